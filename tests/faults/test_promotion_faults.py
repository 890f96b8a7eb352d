"""Promotion under faults (issue 9 cases 5, 6, 7; "What to build" 2 and 3) on real servers.

A real `mlflow server` and a real Prefect server (tests/support/servers.py), a real DVC registry and GX.
CLI runs are subprocesses (`python -m cli.main retrain ...`) so the per-model lock is taken by separate
processes, as two terminals or a deployment and a terminal would. Crashes are SIGKILLs at named points
(EVERGREEN_FAULT, evergreen/faults.py). After each fault the DESIGN.md invariants are asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from adapters import audit_log
from adapters import mlflow_promotion as promotion
from adapters import mlflow_registry as registry
from evergreen.audit import Action
from evergreen.settings import get_settings
from tests.faults.invariants import assert_registry_invariants
from tests.support.builders import ROOT, elec2_weeks, write_batch

pytestmark = [pytest.mark.slow, pytest.mark.faults]

LINEAGE = ("data_version", "train_end", "gate_passed", "gate_decision", "retrain_key", "gate_outcome")


@pytest.fixture(scope="module")
def weeks() -> list[pd.DataFrame]:
    return elec2_weeks()


@pytest.fixture
def model(fresh_model) -> str:
    return fresh_model("pf")


def _ingest(model: str, frame: pd.DataFrame, path: Path) -> None:
    from flows.ingest import ingest

    out = ingest(model=model, path=write_batch(frame, path))
    assert out["status"] == "ingested", out


def _baseline(model: str, weeks: list[pd.DataFrame], tmp_path: Path) -> None:
    """Ten weeks ingested and v1 promoted (refit: it trained through the end of week 9)."""
    from flows.retrain import retrain

    _ingest(model, pd.concat(weeks[:10]), tmp_path / "w0-9.csv")
    assert retrain(model=model, reason="manual")["status"] == "promoted"


def _cli(model: str, *args: str, fault: str | None = None) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.pop("EVERGREEN_FAULT", None)
    if fault:
        env["EVERGREEN_FAULT"] = fault
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "retrain", model, "--force", "--json", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _outcome(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    start = out.index("{")  # tolerate stray lines before the JSON (issue 9 case 11 is W3's)
    return json.loads(out[start:])


def _versions(model: str) -> dict[str, dict[str, str]]:
    cl = registry.client(get_settings())
    return {str(mv.version): dict(mv.tags) for mv in cl.search_model_versions(f"name='{model}'")}


def _champion(model: str) -> registry.Champion:
    champ = registry.get_champion(registry.client(get_settings()), model)
    assert champ is not None
    return champ


def test_concurrent_retrains_serialize_and_each_replaces_a_distinct_champion(model, weeks, tmp_path):
    """Issue 9 case 5: two `evergreen retrain --force` at once against one MLflow and one Prefect server."""
    _baseline(model, weeks, tmp_path)
    _ingest(model, weeks[10], tmp_path / "w10.csv")
    # refit off: the second run's champion did not learn week 10, so both runs have evidence to judge on.
    procs = [_cli(model, "--set", "training.refit=false") for _ in range(2)]
    outs = [_outcome(p) for p in procs]

    assert sorted(o["version"] for o in outs) == ["2", "3"]  # one version per retrain
    promoted = sorted((o for o in outs if o["status"] == "promoted"), key=lambda o: int(o["version"]))
    previous = [o["previous_champion"] for o in promoted]
    assert len(previous) == len(set(previous)), "two promotions replaced the same champion"
    # serialised: the later run scored against what the earlier one left as champion
    first, second = sorted(outs, key=lambda o: int(o["version"]))
    assert first["previous_champion"] == "1"
    assert second["previous_champion"] == first["champion_version"]
    assert _champion(model).version == second["champion_version"]
    promotes = audit_log.read(get_settings(), model, action=Action.PROMOTE)
    assert sorted(e.versions["version"] for e in promotes) == sorted(["1", *(o["version"] for o in promoted)])
    assert_registry_invariants(model)


@pytest.mark.faults_full  # waits out a killed holder's lease (~75 s): `make test-faults`
def test_kill_after_register_leaves_an_orphan_the_next_run_marks(model, weeks, tmp_path):
    """Issue 9 case 6: SIGKILL just after the version is created; the next run converges."""
    _baseline(model, weeks, tmp_path)
    _ingest(model, weeks[10], tmp_path / "w10.csv")
    killed = _cli(model, fault="retrain:after-register")
    killed.communicate(timeout=600)
    assert killed.returncode == -9
    orphan = _versions(model)["2"]
    assert orphan["gate_passed"] == "true" and _champion(model).version == "1"

    # The next run waits for the dead run's lease on the lock to lapse, then recovers.
    out = _outcome(_cli(model))
    tags = _versions(model)
    assert tags["2"]["orphaned"] == "true" and not tags["2"].get("promoted_at")
    marked = audit_log.read(get_settings(), model, action=Action.ORPHAN)
    assert [e.versions["version"] for e in marked] == ["2"]  # the marking is a decision too
    assert out["version"] == "3" and out["previous_champion"] == "1"
    assert_registry_invariants(model)


@pytest.mark.faults_full  # waits out a killed holder's lease (~75 s): `make test-faults`
def test_kill_after_alias_move_completes_the_promotion_record(model, weeks, tmp_path):
    """Issue 9 case 6: the alias moved but the promotion tags were never written; the next run repairs."""
    _baseline(model, weeks, tmp_path)
    _ingest(model, weeks[10], tmp_path / "w10.csv")
    killed = _cli(model, fault="retrain:after-alias")
    killed.communicate(timeout=600)
    assert killed.returncode == -9
    assert _champion(model).version == "2" and "promoted_at" not in _champion(model).tags

    _outcome(_cli(model))
    champ = _champion(model)
    assert champ.version == "2" and champ.tags["replaced_version"] == "1" and champ.tags["promoted_at"]
    recovered = audit_log.read(get_settings(), model, action=Action.RECOVER)
    assert [(e.versions["from_version"], e.versions["to_version"]) for e in recovered] == [("1", "2")]
    assert_registry_invariants(model)


def test_duplicate_create_keeps_one_version_per_retrain(model, weeks, tmp_path):
    """Issue 9 case 6: a retried `model-versions/create` made two versions of one retrain; one is kept."""
    _baseline(model, weeks, tmp_path)
    settings = get_settings()
    champ = _champion(model)
    cl = registry.client(settings)
    key = f"retry-{uuid.uuid4().hex[:6]}"
    source = f"runs:/{champ.run_id}/model"  # the server resolves run sources without a model id
    for _ in range(2):  # what a lost response plus the client's retry leaves behind
        cl.create_model_version(model, source=source, run_id=champ.run_id, tags={"retrain_key": key})
    assert len(promotion.versions_with_key(settings, model, key)) == 2
    logged = registry.LoggedRun(run_id=champ.run_id, model_uri=source, experiment_id="")
    kept = promotion.register_once(settings, model, logged, {"retrain_key": key}, "again")
    assert promotion.versions_with_key(settings, model, key) == [kept] == ["2"]


def test_gate_uses_only_rows_the_refit_champion_never_saw(model, weeks, tmp_path):
    """Issue 9 case 7: with refit the champion trained on its hold-out; the next gate must not judge there."""
    from flows.retrain import retrain

    _baseline(model, weeks, tmp_path)
    v1_end = pd.Timestamp(_champion(model).tags["train_end"])
    week = weeks[10].reset_index(drop=True)

    # One day later: 288 of the 336 hold-out rows are rows v1 trained on -> insufficient evidence.
    _ingest(model, week.iloc[:48], tmp_path / "d1.csv")
    thin = retrain(model=model, reason="manual", force=True)
    assert thin["status"] == "rejected" and thin["gate_outcome"] == "insufficient_evidence"
    assert thin["detail"].startswith("insufficient evidence: 48 hold-out rows")
    assert _champion(model).version == "1"
    tags = _versions(model)[thin["version"]]
    assert tags["gate_outcome"] == "insufficient_evidence" and tags["gate_excluded_rows"] == "288"
    assert tags["registered"] == "the judged challenger" and not tags.get("promoted_at")

    # Three days later: 144 unseen rows are enough; the gate judges on those only.
    _ingest(model, week.iloc[48:144], tmp_path / "d2-3.csv")
    out = retrain(model=model, reason="manual", force=True)
    assert out["gate_outcome"] in ("passed", "rejected") and out["decision"]["n_holdout"] == 144
    tags = _versions(model)[out["version"]]
    assert tags["gate_rows"] == "144" and tags["gate_excluded_rows"] == "192"
    judged_from = tags["gate_judged"].split("judged on 144 hold-out rows ")[1].split("..")[0]
    assert pd.Timestamp(judged_from) > v1_end
    if out["status"] == "promoted":
        assert tags["registered"].startswith("refit on")
    assert_registry_invariants(model)
