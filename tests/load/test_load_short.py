"""The load test's short form: benchmarks/load.py --short (4 models, 60 events over 1 minute, two of
them outside their cooldown, one of those behind its held retrain lock), on real PostgreSQL-backed
Prefect and MLflow servers with a real worker. The script asserts; this test runs it and reads its JSON.
No timed assertion: the latencies are reported, not checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.load, pytest.mark.slow]


def test_short_load_accounts_for_every_event(tmp_path: Path) -> None:
    out = tmp_path / "load-short.json"
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "load.py"), "--short", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert out.is_file(), f"no result (exit {res.returncode}):\n{res.stderr[-4000:]}"
    result = json.loads(out.read_text())
    assert result["failures"] == [], result["failures"]
    assert res.returncode == 0, res.stderr[-4000:]
    events = result["events"]
    assert events["emitted"] == 60 and events["lost"] == 0 and events["unexplained"] == 0
    assert events["started_run"] + events["in_trigger_window"] == events["emitted"]
    runs = result["runs"]
    assert runs["created"] >= 8  # a drift and a performance run for each of the 4 models
    assert runs["without_audit_decision"] == 0
    assert set(runs["decisions"]) <= {"skip", "promote", "reject-model"}
    assert result["lock_check"]["others_decided_while_held"] is True
    assert result["isolation"]["same_deployment_overlaps"] == 0
