"""`promotion.approval: always` on real parts (issue 13 part 3): the retrain pauses for a person.

The retrain runs in a thread (in-process, as `evergreen retrain` runs it); the test finds it PAUSED through
the Prefect API and answers it: once with `evergreen approve --approve` (a subprocess: the real CLI, which
resumes the run with the typed input), once with `prefect.flow_runs.resume_flow_run(..., run_input=...)`
rejecting. A third run gets no answer within a 3 s `approval_timeout` and is rejected by default. Each
answer is on the version's tags and in the audit log; a rejection leaves the champion where it was.
Real DVC registry, real GX, real MLflow server, real Prefect API.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from adapters import audit_log
from adapters import mlflow_registry as model_registry
from evergreen.audit import Action
from evergreen.settings import get_settings
from tests.support.builders import ROOT, write_batch, write_spec
from tests.support.prefect_events import wait_events
from tests.unit.test_spec_matrix import spec_dict, synth_frame

pytestmark = [pytest.mark.slow, pytest.mark.integration]

DAY = 24


def _paused_run(model: str, future: Future[Any], wait: float = 90.0) -> dict[str, Any]:
    """The model's paused retrain, polled through the Prefect API (the flow may still be training)."""
    from cli.approve_cmd import paused_retrains

    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if future.done():  # it finished without pausing: show why
            raise AssertionError(f"the retrain never paused: {future.result()}")
        rows = paused_retrains(model)
        if rows and rows[0]["version"]:
            return rows[0]
        time.sleep(0.5)
    raise AssertionError("no paused retrain within the wait bound")


def _final_state(flow_run_id: str) -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(uuid.UUID(flow_run_id)).state.type.value


def test_a_paused_retrain_is_approved_rejected_or_times_out(env, prefect_server, tmp_path, monkeypatch):
    from prefect.flow_runs import resume_flow_run

    from flows.ingest import ingest
    from flows.retrain import retrain

    model = f"approve-{tmp_path.name[-6:].lower().replace('_', '-')}"
    raw = spec_dict("binary", name=model, window={"kind": "rolling", "period": "14D"})
    raw["training"]["holdout"] = {"period": "2D"}
    raw["promotion"] = {"approval": "always", "approval_timeout": "60s"}
    models = tmp_path / "models"
    write_spec(models, raw)
    monkeypatch.setenv("EVERGREEN_MODELS_DIR", str(models))
    frame = synth_frame("binary", weeks=4, seed=7)
    cl = model_registry.client(get_settings())
    pool = ThreadPoolExecutor(max_workers=1)

    assert (
        ingest(model=model, path=write_batch(frame.iloc[: 21 * DAY], tmp_path / "a.parquet"))["status"]
        == "ingested"
    )
    first = retrain(model=model, overrides={"promotion.approval": "never"})
    assert first["status"] == "promoted" and first["approval"] is None
    assert (
        ingest(model=model, path=write_batch(frame.iloc[21 * DAY :], tmp_path / "b.parquet"))["status"]
        == "ingested"
    )

    # 1. Approved with the CLI.
    running = pool.submit(retrain, model=model, reason="manual", force=True)
    paused = _paused_run(model, running)
    assert cl.get_model_version(model, paused["version"]).tags["approval_status"] == "pending"
    listed = subprocess.run(
        [sys.executable, "-m", "cli.main", "approve", "--list", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert paused["flow_run_id"] in {r["flow_run_id"] for r in json.loads(listed.stdout)}, listed.stdout
    cli = subprocess.run(
        [sys.executable, "-m", "cli.main", "approve", model, "--approve", "--approver", "ana",
         "--comment", "checked the slices", "--json"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["flow_run_id"] == paused["flow_run_id"]
    approved = running.result(timeout=120)
    assert approved["status"] == "promoted" and approved["version"] == paused["version"], approved["detail"]
    assert approved["approval"] == {"approved": True, "approver": "ana", "comment": "checked the slices",
                                    "timed_out": False}  # fmt: skip
    tags = cl.get_model_version(model, approved["version"]).tags
    assert tags["approval_status"] == "approved" and tags["approval_approver"] == "ana"
    assert tags["approval_comment"] == "checked the slices"
    assert cl.get_model_version_by_alias(model, "champion").version == approved["version"]
    assert _final_state(paused["flow_run_id"]) == "COMPLETED"

    # 2. Rejected through the Prefect API: registered, champion unchanged.
    running = pool.submit(retrain, model=model, reason="manual", force=True)
    paused = _paused_run(model, running)
    resume_flow_run(
        uuid.UUID(paused["flow_run_id"]),
        run_input={"approve": False, "approver": "bo", "comment": "too risky"},
    )
    rejected = running.result(timeout=120)
    assert rejected["status"] == "rejected" and rejected["champion_version"] == approved["version"], rejected
    assert rejected["gate_outcome"] == "passed" and "rejected by bo: too risky" in rejected["detail"]
    tags = cl.get_model_version(model, rejected["version"]).tags
    assert tags["approval_status"] == "rejected" and tags["approval_approver"] == "bo"
    assert "rejected by bo" in tags["rejection_reason"]
    assert cl.get_model_version_by_alias(model, "champion").version == approved["version"]

    # 3. No answer within approval_timeout: rejected by default, the run still ends Completed.
    timed = retrain(model=model, reason="manual", force=True, overrides={"promotion.approval_timeout": "3s"})
    assert timed["status"] == "rejected" and timed["approval"]["timed_out"] is True, timed
    timed_tags = cl.get_model_version(model, timed["version"]).tags
    assert timed_tags["approval_status"] == "timed_out"
    assert _final_state(timed_tags["approval_flow_run_id"]) == "COMPLETED"  # not failed by the expired pause
    assert cl.get_model_version_by_alias(model, "champion").version == approved["version"]

    entries = audit_log.read(get_settings(), model, action=Action.APPROVE)
    by_version = {e.versions["version"]: e for e in entries}
    assert by_version[approved["version"]].evidence["approver"] == "ana"
    assert by_version[approved["version"]].evidence["approved"] is True
    assert by_version[rejected["version"]].evidence["comment"] == "too risky"
    assert by_version[timed["version"]].evidence["timed_out"] is True
    pool.shutdown()

    decided = wait_events(prefect_server.api_url, model, ["evergreen.approval.decided"], 3)
    requested = wait_events(prefect_server.api_url, model, ["evergreen.approval.requested"], 3)
    assert [e["payload"]["decision"] for e in decided] == ["approved", "rejected", "rejected"]
    assert [e["payload"]["timed_out"] for e in decided] == [False, False, True]
    assert [e["payload"]["version"] for e in requested] == [
        approved["version"],
        rejected["version"],
        timed["version"],
    ]
    assert all(e["payload"]["timeout_seconds"] in (60, 3) and e["payload"]["flow_run_id"] for e in requested)


def test_a_paused_deployment_run_on_a_worker_is_approved_through_the_api(
    env, prefect_server, prefect_worker, tmp_path, monkeypatch
):
    """The same pause in a deployment run: the worker's process waits, `evergreen approve` resumes it."""
    from prefect import flow
    from prefect.deployments import run_deployment

    from flows.ingest import ingest

    model = f"approve-dep-{tmp_path.name[-6:].lower().replace('_', '-')}"
    raw = spec_dict("binary", name=model, window={"kind": "rolling", "period": "14D"})
    raw["training"]["holdout"] = {"period": "2D"}
    raw["promotion"] = {"approval": "always", "approval_timeout": "60s"}
    models = tmp_path / "models"
    write_spec(models, raw)
    monkeypatch.setenv("EVERGREEN_MODELS_DIR", str(models))
    frame = synth_frame("binary", weeks=3, seed=11)
    assert ingest(model=model, path=write_batch(frame, tmp_path / "a.parquet"))["status"] == "ingested"

    pool = f"approve-pool-{tmp_path.name[-6:].lower()}"
    prefect_worker(pool, server=prefect_server, cwd=ROOT, env={**env, "EVERGREEN_MODELS_DIR": str(models)})
    source = flow.from_source(source=str(ROOT), entrypoint="flows/retrain.py:retrain")
    dep_id = source.deploy(name=model, work_pool_name=pool, print_next_steps=False)
    started = run_deployment(dep_id, parameters={"model": model}, timeout=0)

    done: Future[Any] = Future()  # never set: _paused_run only polls the API here
    paused = _paused_run(model, done, wait=120)
    assert paused["flow_run_id"] == str(started.id)
    cli = subprocess.run(
        [sys.executable, "-m", "cli.main", "approve", paused["flow_run_id"], "--approve", "--approver", "cy"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert "approved by cy" in cli.stdout
    deadline = time.monotonic() + 120
    while _final_state(paused["flow_run_id"]) != "COMPLETED" and time.monotonic() < deadline:
        time.sleep(1)
    assert _final_state(paused["flow_run_id"]) == "COMPLETED"
    cl = model_registry.client(get_settings())
    champ = cl.get_model_version_by_alias(model, "champion")
    assert champ.version == paused["version"] and champ.tags["approval_approver"] == "cy"
    assert champ.tags["prefect_flow_run_id"] == paused["flow_run_id"]  # registered by the worker's run
