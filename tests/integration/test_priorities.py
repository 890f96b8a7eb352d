"""Retrain priorities on a real Prefect server: queues retrain-p1..p5 in the pool, and a worker that
takes the urgent run first.

The rendered prefect.yaml puts event-driven retrains (``retrain/<model>``, queue retrain-p1) and the
routine cron (``retrain/<model>-p5``, queue retrain-p5) in separate deployments. With one free slot in
the pool, a performance retrain queued AFTER a scheduled one must still start first.
"""

from __future__ import annotations

import uuid

import pytest

import stack
from deployments import render_prefect_yaml, work_queues
from evergreen.spec import load_spec, parse_spec
from stack.queues import ensure_work_queues, queue_priorities
from tests.e2e.harness import ROOT, TERMINAL, deploy, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_work_queues_are_created_idempotently_with_their_priorities(prefect_server, stack_env):
    stack_env(prefect=prefect_server)
    pool = f"prio-{uuid.uuid4().hex[:6]}"
    stack.create_work_pool(prefect_server.api_url, pool)
    first = ensure_work_queues(prefect_server.api_url, pool, work_queues())
    assert first["default"] == "exists" and all(first[f"retrain-p{p}"] == "created" for p in range(1, 6))
    assert queue_priorities(prefect_server.api_url, pool) == dict(work_queues())
    again = ensure_work_queues(prefect_server.api_url, pool, work_queues())
    assert set(again.values()) == {"exists"}


def test_worker_takes_the_urgent_retrain_before_an_earlier_scheduled_one(
    prefect_server, stack_env, prefect_worker, tmp_path
):
    from prefect.client.orchestration import get_client

    model = f"prio-{uuid.uuid4().hex[:6]}"
    pool = f"prio-pool-{uuid.uuid4().hex[:6]}"
    # the runs need not succeed: no spec for `model` in this models dir, so each fails fast after it starts
    env = stack_env(prefect=prefect_server, home=tmp_path / "home", EVERGREEN_MODELS_DIR=str(tmp_path))
    stack.create_work_pool(prefect_server.api_url, pool)
    ensure_work_queues(prefect_server.api_url, pool, work_queues())
    spec = load_spec("elec2", ROOT / "models").model_dump(mode="json")
    (tmp_path / "prefect.yaml").write_text(
        render_prefect_yaml([parse_spec({**spec, "name": model})], work_pool=pool)
    )
    deploy(tmp_path / "prefect.yaml", env)

    with get_client(sync_client=True) as c:
        c.update_work_pool(pool, _pool_update(concurrency_limit=1))  # one slot: the runs must queue
        urgent_dep = c.read_deployment_by_name(f"retrain/{model}")
        routine_dep = c.read_deployment_by_name(f"retrain/{model}-p5")
        assert (urgent_dep.work_queue_name, routine_dep.work_queue_name) == ("retrain-p1", "retrain-p5")
        routine = c.create_flow_run_from_deployment(routine_dep.id, parameters={"reason": "schedule"})
        urgent = c.create_flow_run_from_deployment(urgent_dep.id, parameters={"reason": "performance"})
    assert routine.expected_start_time <= urgent.expected_start_time  # queued first

    prefect_worker(pool, server=prefect_server, cwd=ROOT, env=env)

    def finished(run_id):
        with get_client(sync_client=True) as c:
            run = c.read_flow_run(run_id)
        return run if run.state_type.value in TERMINAL else None

    done_urgent = wait_for("the urgent run", lambda: finished(urgent.id))
    done_routine = wait_for("the routine run", lambda: finished(routine.id))
    assert done_urgent.start_time is not None and done_routine.start_time is not None
    assert done_urgent.start_time < done_routine.start_time, (done_urgent.start_time, done_routine.start_time)


def _pool_update(**fields):
    from prefect.client.schemas.actions import WorkPoolUpdate

    return WorkPoolUpdate(**fields)
