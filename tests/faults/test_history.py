"""The audit trail end to end (issue 9 case 9, "Done when": `evergreen history --json` shows promote,
reject, rollback and skip entries with actors).

Every decision is made by the real `evergreen` CLI as a subprocess against a real Prefect server, a
real MLflow server, a real DVC registry and GX; the log is then read back through `evergreen history`.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.support.builders import ROOT, elec2_weeks, write_batch

pytestmark = [pytest.mark.slow, pytest.mark.faults]

EVERGREEN = str(ROOT / ".venv" / "bin" / "evergreen")


@pytest.fixture
def model(fresh_model) -> str:
    return fresh_model("hist")


def _run(*args: str, actor: str | None = None, json_out: bool = True) -> subprocess.CompletedProcess[str]:
    """One `evergreen` command as a user types it; EVERGREEN_ACTOR only when `actor` is given."""
    env = dict(os.environ)
    env.pop("EVERGREEN_ACTOR", None)
    env.pop("EVERGREEN_FAULT", None)
    if actor is not None:
        env["EVERGREEN_ACTOR"] = actor
    cmd = [EVERGREEN, *args, *(["--json"] if json_out else [])]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{cmd}: {proc.stderr[-3000:]}"
    return proc


def _json(*args: str, actor: str | None = None) -> Any:
    return json.loads(_run(*args, actor=actor).stdout)


def _ingest(model: str, frame: pd.DataFrame, path: Path) -> None:
    out = _json("ingest", model, write_batch(frame, path))
    assert out["status"] == "ingested", out


def _decisions(model: str, tmp_path: Path) -> dict[str, Any]:
    """Ingest, promote v1, skip (cooldown), reject (floor 0.999), promote, rollback: returns the outcomes."""
    weeks = elec2_weeks()
    _ingest(model, pd.concat(weeks[:10]), tmp_path / "w0-9.csv")
    first = _json("retrain", model)
    assert first["status"] == "promoted" and first["version"] == "1", first
    skipped = _json("retrain", model)  # inside the 27-day cooldown, not forced
    assert skipped["status"] == "skipped", skipped

    # A week v1 never saw, so both later gates have unseen hold-out rows to judge on.
    _ingest(model, weeks[10], tmp_path / "w10.csv")
    rejected = _json("retrain", model, "--force", "--set", "gate.floor=0.999")
    assert rejected["status"] == "rejected" and rejected["version"] == "2", rejected
    promoted = _json("retrain", model, "--force")
    assert promoted["status"] == "promoted" and promoted["version"] == "3", promoted
    assert promoted["previous_champion"] == "1"
    rolled = _json("rollback", model, "--reason", "history test", actor="alice")
    assert (rolled["from_version"], rolled["to_version"]) == ("3", "1"), rolled
    return {"rejected": rejected, "promoted": promoted, "rollback": rolled}


def test_history_shows_every_decision_with_its_actor(model, tmp_path):
    """Case 9: no actor was recorded, alias history was overwritten; `evergreen history` now has it all."""
    outcomes = _decisions(model, tmp_path)

    entries = json.loads(_run("history", model).stdout)  # stdout is pure JSON
    assert isinstance(entries, list)
    actions = [e["action"] for e in entries]
    assert actions == ["ingest", "promote", "skip", "ingest", "reject-model", "promote", "rollback"], actions
    times = [pd.Timestamp(e["time"]) for e in entries]
    assert times == sorted(times), "history is not in time order"
    assert all(isinstance(e["actor"], str) and e["actor"].strip() for e in entries)
    assert all(e["model"] == model for e in entries)

    by_action: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        by_action.setdefault(e["action"], []).append(e)
    assert all(e["versions"]["data_version"] for e in by_action["ingest"])
    v1, v3 = by_action["promote"]
    assert v1["versions"]["version"] == "1" and v1["versions"].get("previous_champion") in (None, "")
    assert v3["versions"] == {"version": "3", "previous_champion": "1"}
    assert v3["evidence"]["run_id"] == outcomes["promoted"]["run_id"]
    (reject,) = by_action["reject-model"]
    assert reject["versions"] == {"version": "2", "previous_champion": "1"}
    assert reject["evidence"]["run_id"] == outcomes["rejected"]["run_id"]
    (skip,) = by_action["skip"]
    assert skip["reason"]  # the policy's detail (cooldown), not empty
    (rollback,) = by_action["rollback"]
    rolled = outcomes["rollback"]
    assert rollback["versions"] == {
        "from_version": rolled["from_version"],
        "to_version": rolled["to_version"],
    }
    assert rollback["actor"] == "alice" and rollback["reason"] == "history test"
    # Only the command run with EVERGREEN_ACTOR=alice is attributed to alice.
    assert all(e["actor"] != "alice" for e in entries if e["action"] != "rollback")

    # Text mode: a table naming every action, exit 0.
    table = _run("history", model, json_out=False).stdout
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["TIME", "(UTC)", "ACTION"] and "ACTOR" in lines[0]
    assert [ln.split()[2] for ln in lines[1:]] == actions
    assert "alice" in lines[-1] and "from_version=3 to_version=1" in lines[-1]
