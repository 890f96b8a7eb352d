"""Rollback rules (issue 9 case 8, "What to build" 4) on a real MLflow server and a real Prefect server.

Versions are created directly in the registry (no training: rollback only reads tags and moves the
alias); promotions go through the production code path (adapters.mlflow_registry.set_alias).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from adapters import audit_log
from adapters import mlflow_registry as registry
from evergreen.audit import Action
from evergreen.settings import get_settings
from tests.faults.invariants import assert_champion_gated
from tests.support.builders import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.faults]

PROMOTION_TAGS = ("promoted_at", "promotion_reason", "replaced_version")


@pytest.fixture
def env(prefect_server, mlflow_server, stack_env, tmp_path, monkeypatch) -> dict[str, str]:
    monkeypatch.chdir(ROOT)
    return stack_env(prefect=prefect_server, mlflow=mlflow_server, home=tmp_path / "home")


@pytest.fixture
def model() -> str:
    return f"rb-{uuid.uuid4().hex[:8]}"


def _version(model: str, tmp: Path, *, passed: bool, promote: bool) -> str:
    """A registered version with gate tags; `promote` moves `champion` to it like a real promotion."""
    settings = get_settings()
    cl = registry.client(settings)
    try:
        cl.get_registered_model(model)
    except Exception:  # noqa: BLE001  first version: create the registered model
        cl.create_registered_model(model)
    run = cl.create_run("0")  # a real run: the server only accepts sources it can resolve
    decision = {"passed": passed}
    mv = cl.create_model_version(
        model,
        source=f"runs:/{run.info.run_id}/model",
        run_id=run.info.run_id,
        tags={"gate_passed": str(passed).lower(), "gate_decision": json.dumps(decision)},
    )
    version = str(mv.version)
    if promote:
        champ = registry.get_champion(cl, model)
        registry.set_alias(
            settings,
            model,
            registry.CHAMPION,
            version,
            reason="gate passed",
            previous=champ.version if champ else None,
        )
    return version


def _tags(model: str, version: str) -> dict[str, str]:
    return dict(registry.client(get_settings()).get_model_version(model, version).tags)


def _champion(model: str) -> str:
    champ = registry.get_champion(registry.client(get_settings()), model)
    assert champ is not None
    return champ.version


def _rollbacks(model: str) -> list[Any]:
    return audit_log.read(get_settings(), model, action=Action.ROLLBACK)


def test_rollback_refuses_ungated_version_unless_forced(env, model, tmp_path):
    """Case 8: `rollback --to 4` accepted a gate-rejected, never-promoted version."""
    from flows.rollback import RollbackError, rollback

    _version(model, tmp_path, passed=True, promote=True)
    v2 = _version(model, tmp_path, passed=True, promote=True)
    rejected = _version(model, tmp_path, passed=False, promote=False)

    with pytest.raises(RollbackError, match="never passed a gate.*--force"):
        rollback(model=model, to_version=rejected)
    assert _champion(model) == v2 and _rollbacks(model) == []
    assert_champion_gated(model)

    out = rollback(model=model, to_version=rejected, reason="incident 7", force=True)
    assert out["forced"] is True and _champion(model) == rejected
    entries = _rollbacks(model)
    assert len(entries) == 1
    entry = entries[0]
    assert entry.versions == {"from_version": v2, "to_version": rejected}
    assert entry.evidence["forced"] is True and entry.actor and entry.reason == "incident 7"


def test_rollback_walks_back_and_never_toggles(env, model, tmp_path):
    """Case 8: a second default rollback brought back the version the first one rolled back."""
    from flows.rollback import RollbackError, rollback

    v1 = _version(model, tmp_path, passed=True, promote=True)
    v2 = _version(model, tmp_path, passed=True, promote=True)
    _version(model, tmp_path, passed=False, promote=False)  # rejected: never in the champion chain
    v4 = _version(model, tmp_path, passed=True, promote=True)

    assert rollback(model=model)["to_version"] == v2
    assert rollback(model=model)["to_version"] == v1  # two steps back, not back to v4
    assert_champion_gated(model)
    with pytest.raises(RollbackError, match="no earlier champion"):
        rollback(model=model)
    assert _champion(model) == v1

    # Invariant 4: every alias move made by rollback is in the audit log, with an actor.
    moves = [(e.versions["from_version"], e.versions["to_version"]) for e in _rollbacks(model)]
    assert moves == [(v4, v2), (v2, v1)]
    assert all(e.actor and e.evidence["forced"] is False for e in _rollbacks(model))


def test_rollback_keeps_promotion_tags(env, model, tmp_path):
    """Case 8: rollback overwrote the target's earlier promotion tags."""
    from flows.rollback import rollback

    v1 = _version(model, tmp_path, passed=True, promote=True)
    v2 = _version(model, tmp_path, passed=True, promote=True)
    before = {k: _tags(model, v1)[k] for k in PROMOTION_TAGS}

    rollback(model=model, reason="first")
    rollback(model=model, to_version=v2, reason="back again")
    rollback(model=model, reason="second")  # v2 replaced v1: back to v1 a second time

    after = _tags(model, v1)
    assert {k: after[k] for k in PROMOTION_TAGS} == before
    # Each move is its own numbered tag set: history is kept, not overwritten.
    assert after["rollback.1.from"] == v2 and after["rollback.1.reason"] == "first"
    assert after["rollback.2.to"] == v2 and after["rollback.2.reason"] == "back again"
    assert after["rollback.3.from"] == v2 and after["rollback.3.reason"] == "second"
    v2_tags = _tags(model, v2)
    assert (v2_tags["rollback.1.to"], v2_tags["rollback.2.from"], v2_tags["rollback.3.to"]) == (v1, v1, v1)
    assert _champion(model) == v1
    assert_champion_gated(model)


def test_cli_rollback_to_ungated_is_one_error_line(env, model, tmp_path):
    """Case 8 via the CLI: one `error:` line naming --force, exit 1, no traceback; --force is audited."""
    _version(model, tmp_path, passed=True, promote=True)
    rejected = _version(model, tmp_path, passed=False, promote=False)
    cmd = [sys.executable, "-m", "cli.main", "rollback", model, "--to", rejected]
    run_env = {**os.environ, **env}
    bad = subprocess.run(cmd, cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=300)
    errors = [ln for ln in bad.stderr.splitlines() if ln.startswith("error:")]
    assert bad.returncode == 1, bad.stderr
    assert len(errors) == 1 and "never passed a gate" in errors[0] and "--force" in errors[0]
    assert "Traceback" not in bad.stderr

    ok = subprocess.run(
        [*cmd, "--force", "--json"], cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=300
    )
    assert ok.returncode == 0, ok.stderr
    out = json.loads(ok.stdout)
    assert out["forced"] is True and out["to_version"] == rejected
    assert [e.evidence["forced"] for e in _rollbacks(model)] == [True]
