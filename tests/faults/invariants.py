"""The DESIGN.md invariants, one implementation for the fault suite and the soak (tests/faults).

1. `champion` points at a version that passed a gate and carries its promotion record.
2. Every batch reported ingested is in the registry exactly once (rows by key, at the registry's HEAD
   read back through DVC); nothing orphaned or pending; one event and one audit entry per ingest commit.
3. Every version has its lineage; one retrain (one `retrain_key`) registers at most one version.
4. Every alias move is in the audit log: every promoted version has a `promote` or `recover` entry, and
   the latest alias-moving entry (`promote`, `recover`, `rollback`) names the current champion.

Each check reads the real systems (MLflow registry and audit log, the git+DVC registry, Prefect events).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from adapters import audit_log, dvc_ingest, dvc_registry
from adapters import mlflow_registry as registry
from evergreen.audit import Action, AuditEntry
from evergreen.settings import get_settings
from tests.support.prefect_events import wait_events

INGESTED = "evergreen.data.ingested"
LINEAGE = ("data_version", "gate_passed", "gate_decision")
ALIAS_MOVES = (Action.PROMOTE, Action.RECOVER, Action.ROLLBACK)


def versions(model: str) -> dict[str, dict[str, str]]:
    """Every registered version of `model` with its tags."""
    cl = registry.client(get_settings())
    return {str(mv.version): dict(mv.tags) for mv in cl.search_model_versions(f"name='{model}'")}


def champion(model: str) -> registry.Champion:
    champ = registry.get_champion(registry.client(get_settings()), model)
    assert champ is not None, f"{model} has no champion"
    return champ


def assert_champion_gated(model: str) -> None:
    """Invariant 1: the champion passed a gate and carries its promotion record."""
    champ = champion(model)
    assert champ.tags.get("gate_passed") == "true", f"champion v{champ.version} never passed a gate"
    assert champ.tags.get("promoted_at") and "replaced_version" in champ.tags, (
        f"champion v{champ.version} lacks its promotion record"
    )


def assert_lineage(model: str, tags_by_version: dict[str, dict[str, str]] | None = None) -> None:
    """Invariant 3: every version has lineage, one version per retrain, no unmarked orphan."""
    tags_by_version = versions(model) if tags_by_version is None else tags_by_version
    champ = champion(model).version
    keys: dict[str, str] = {}
    for v, tags in tags_by_version.items():
        missing = [k for k in LINEAGE if k not in tags]
        assert not missing, f"v{v} lacks lineage {missing}"
        key = tags.get("retrain_key")
        if key:
            assert key not in keys, f"retrain {key} registered v{keys[key]} and v{v}"
            keys[key] = v
        unpromoted_pass = tags["gate_passed"] == "true" and not tags.get("promoted_at")
        if unpromoted_pass and v != champ:
            assert tags.get("orphaned") == "true" or tags.get("rejection_reason"), (
                f"v{v} passed a gate, was never promoted and is not marked orphaned or rejected"
            )


def _target(entry: AuditEntry) -> str | None:
    return entry.versions.get("version" if entry.action == Action.PROMOTE else "to_version")


def assert_alias_moves_audited(
    model: str,
    tags_by_version: dict[str, dict[str, str]] | None = None,
    entries: list[AuditEntry] | None = None,
) -> None:
    """Invariant 4: every promoted version has its audit entry; the last audited move is the champion."""
    tags_by_version = versions(model) if tags_by_version is None else tags_by_version
    entries = audit_log.read(get_settings(), model) if entries is None else entries
    moves = [e for e in entries if e.action in ALIAS_MOVES]
    moved_to = {_target(e) for e in moves if e.action in (Action.PROMOTE, Action.RECOVER)}
    promoted = {v for v, tags in tags_by_version.items() if tags.get("promoted_at")}
    assert promoted <= moved_to, f"alias moves without an audit entry: {sorted(promoted - moved_to)}"
    assert all(e.actor for e in moves), "an alias move without an actor"
    champ = champion(model).version
    assert moves and _target(moves[-1]) == champ, (
        f"champion is v{champ} but the last audited alias move is "
        f"{(moves[-1].action.value, _target(moves[-1])) if moves else None}"
    )


def assert_registry_invariants(model: str) -> None:
    """Invariants 1, 3 and 4 (the MLflow side)."""
    tags = versions(model)
    assert_champion_gated(model)
    assert_lineage(model, tags)
    assert_alias_moves_audited(model, tags)


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout


def assert_batches_once(
    model: str,
    expected: pd.DataFrame | Iterable[pd.Timestamp],
    api_url: str,
    *,
    dataset: str = "elec2",
    key: str = "timestamp",
) -> None:
    """Invariant 2: rows at HEAD are exactly `expected` (by key, once each); no orphan part, dirty work
    tree or pending announcement; every ingest commit announced once (event and audit entry)."""
    settings = get_settings()
    frame, version = dvc_registry.read_dataset(settings, dataset, None)
    counts = frame[key].value_counts()
    assert counts.max() == 1, f"{int((counts > 1).sum())} keys are stored more than once"
    want = expected[key] if isinstance(expected, pd.DataFrame) else pd.Series(list(expected))
    stored, wanted = set(pd.to_datetime(frame[key])), set(pd.to_datetime(want))
    assert stored == wanted, (
        f"{len(wanted - stored)} reported rows missing, {len(stored - wanted)} rows never reported"
    )
    root = Path(settings.registry_path)
    work = {p.relative_to(root).as_posix() for p in (root / "data").glob("*/part-*.parquet")}
    assert work == dvc_ingest.committed_parts(settings, version.rev), "orphan parts in the work tree"
    status = _git(root, "status", "--porcelain")
    assert status.strip() == "", status
    assert dvc_ingest.read_pending(root) == [], "an announcement is still pending"
    commits = sorted(_git(root, "log", "--format=%H", "--grep=^ingest ").split())
    evs = wait_events(api_url, model, [INGESTED], len(commits))
    assert sorted(e["payload"]["data_rev"] for e in evs) == commits, "one event per committed batch"
    audited = audit_log.read(settings, model, action=Action.INGEST)
    assert sorted((e.versions["data_version"] or "").split(":")[0] for e in audited) == commits, (
        "one ingest audit entry per committed batch"
    )


def assert_invariants(model: str, expected: pd.DataFrame | Iterable[pd.Timestamp], api_url: str) -> None:
    """All four invariants (a model with a champion and ingested data)."""
    assert_batches_once(model, expected, api_url)
    assert_registry_invariants(model)
