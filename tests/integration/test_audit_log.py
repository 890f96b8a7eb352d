"""The audit log on a real MLflow server (and a real Prefect server for the task): append, dedupe, read.

Nothing is faked: entries are MLflow runs on the session's `mlflow server`; the CLI runs as a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient
from prefect import flow

import stack
from adapters import audit_log
from evergreen.audit import ENTRY_TAG_LIMIT, Action, new_entry, run_tags
from evergreen.settings import get_settings
from tasks.audit import record_decision

pytestmark = [pytest.mark.slow, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
EVERGREEN = str(Path(sys.executable).with_name("evergreen"))


@pytest.fixture
def env(mlflow_server, stack_env, tmp_path):
    # A fresh experiment per test: the MLflow server is shared by the whole session.
    return stack_env(
        mlflow=mlflow_server,
        home=tmp_path / "home",
        EVERGREEN_AUDIT_EXPERIMENT=f"audit-{uuid.uuid4().hex[:8]}",
    )


def model_name() -> str:
    return f"audit-{uuid.uuid4().hex[:8]}"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EVERGREEN, "history", *args],
        cwd=ROOT,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_append_dedupe_and_read_back_in_order(env):
    model = model_name()
    settings = get_settings()

    def make(action, minutes, **kw):
        from datetime import UTC, datetime, timedelta

        now = datetime(2026, 12, 1, 12, tzinfo=UTC) + timedelta(minutes=minutes)
        return new_entry(model, action, actor="user:tester", now=now, **kw)

    ingest = make(Action.INGEST, 0, versions={"data_version": "abc123"}, evidence={"flow_run_id": "fr-0"})
    promote = make(
        Action.PROMOTE,
        1,
        versions={"version": 2, "previous_champion": 1},
        reason="gate passed",
        evidence={"flow_run_id": "fr-1", "gate": {"passed": True, "delta_ci_low": -0.001}},
    )
    skip = make(Action.SKIP, 2, reason="cooldown", evidence={"flow_run_id": "fr-2"})
    rollback = make(
        Action.ROLLBACK,
        3,
        versions={"from_version": 2, "to_version": 1},
        reason="manual rollback",
        evidence={"flow_run_id": "fr-3", "gate_report": "x" * ENTRY_TAG_LIMIT},  # too big for a tag
    )
    results = [audit_log.append(settings, e) for e in (ingest, promote, skip, rollback)]
    assert all(r.created for r in results)

    # a retried write of the promotion (same decision, later time) finds the stored entry
    retried = make(
        Action.PROMOTE,
        9,
        versions={"version": 2, "previous_champion": 1},
        reason="gate passed",
        evidence={"flow_run_id": "fr-1", "gate": {"passed": True, "delta_ci_low": -0.001}},
    )
    assert retried.idempotency_key == promote.idempotency_key
    again = audit_log.append(settings, retried)
    assert not again.created and again.run_id == results[1].run_id

    # a write that raced past the lookup (or an HTTP-level retried create): two runs, one entry
    cl = MlflowClient(settings.tracking_uri)
    exp = cl.get_experiment_by_name(settings.audit_experiment)
    assert exp is not None
    tags, _ = run_tags(retried)
    cl.create_run(exp.experiment_id, start_time=int(retried.time.timestamp() * 1000), tags=tags)

    entries = audit_log.read(settings, model)
    assert [e.action for e in entries] == [Action.INGEST, Action.PROMOTE, Action.SKIP, Action.ROLLBACK]
    assert entries == [ingest, promote, skip, rollback]  # the earliest copy; the big one from its artifact
    assert audit_log.read(settings, model, action=Action.PROMOTE) == [promote]
    assert audit_log.read(settings, model, limit=2) == [skip, rollback]
    assert audit_log.read(settings, model_name()) == []

    out = cli(model, "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    records = json.loads(out.stdout)  # stdout is pure JSON
    assert [r["action"] for r in records] == ["ingest", "promote", "skip", "rollback"]
    assert records[1]["versions"] == {"version": "2", "previous_champion": "1"}
    assert records[1]["actor"] == "user:tester" and records[1]["evidence"]["gate"]["passed"] is True
    assert records[3]["evidence"]["gate_report"] == "x" * ENTRY_TAG_LIMIT

    out = cli(model, "--json", "--action", "rollback", "--limit", "5")
    assert [r["action"] for r in json.loads(out.stdout)] == ["rollback"]

    out = cli(model)
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["TIME", "(UTC)", "ACTION"] and len(lines) == 5
    assert "version=2 previous_champion=1" in lines[2] and "gate passed" in lines[2]


def test_unknown_model_is_an_empty_history(env):
    model = model_name()
    out = cli(model, "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout) == []
    out = cli(model)
    assert out.returncode == 0 and "no audit entries" in out.stdout


def test_unreachable_mlflow_is_one_error_line(env):
    port = stack.free_port()  # nothing listens there
    bad = {**os.environ, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}
    bad["EVERGREEN_MLFLOW_TRACKING_URI"] = bad["MLFLOW_TRACKING_URI"]
    out = cli(model_name(), env=bad)
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"127.0.0.1:{port}" in errors[0] and "unreachable" in errors[0]
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_record_decision_task_in_a_flow(env, prefect_server, stack_env):
    stack_env(prefect=prefect_server, mlflow=os.environ["MLFLOW_TRACKING_URI"], EVERGREEN_ACTOR="")
    model = model_name()

    @flow
    def decide() -> list[dict]:
        first = record_decision(model, Action.REJECT_MODEL, versions={"version": 3}, reason="gate failed")
        # the same decision again in the same run (what a task retry does): stored once
        second = record_decision(model, "reject-model", versions={"version": 3}, reason="gate failed")
        return [first, second]

    first, second = decide()
    assert first["created"] and not second["created"] and first["run_id"] == second["run_id"]
    assert first["evidence"]["flow"] == "decide" and first["evidence"]["flow_run_id"]
    assert first["actor"].startswith("user:")  # an in-process run: the login
    [stored] = audit_log.read(get_settings(), model)
    assert stored.idempotency_key == first["idempotency_key"] and stored.reason == "gate failed"


def test_entry_written_while_mlflow_is_down_is_spooled_then_stored(env, monkeypatch):
    """A decision taken while MLflow is unreachable is kept locally and reaches the log on the next write."""
    model = model_name()
    up = get_settings()
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    down = up.model_copy(update={"mlflow_tracking_uri": f"http://127.0.0.1:{stack.free_port()}"})
    lost = new_entry(model, Action.REJECT_BATCH, actor="tester", reason="bad batch while MLflow was down")
    with pytest.raises(audit_log.AuditLogUnavailable, match="unreachable"):
        audit_log.append(down, lost)
    assert len(audit_log.spooled(up)) == 1  # same home: the spool is local, not per server
    stored = audit_log.read(up, model)  # read() stores the spool first
    assert [(e.idempotency_key, e.reason) for e in stored] == [(lost.idempotency_key, lost.reason)]
    assert audit_log.spooled(up) == []
    later = new_entry(model, Action.SKIP, actor="tester", reason="cooldown")
    assert audit_log.append(up, later).created
    keys = [e.idempotency_key for e in audit_log.read(up, model)]
    assert keys == [lost.idempotency_key, later.idempotency_key]  # once each, in decision order
