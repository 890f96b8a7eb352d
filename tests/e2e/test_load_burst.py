"""The load test's CI form: a burst of trigger events on three models, on the suite's session servers.

`make load` (20 models, 10 minutes) and `make load-short` (4 models, 1 minute) bring up their own
PostgreSQL-backed stack (benchmarks/load.py); most of the short form's time is that set-up. This form
runs inside `make test` on the servers the e2e suite already has: the session Prefect server
(PostgreSQL with EVERGREEN_TEST_POSTGRES=1, as in CI; SQLite otherwise), the session MLflow server
(SQLite backend) and the e2e seed champion. Still real: the deployments and automations rendered for
three copies of models/elec2.yaml, `prefect deploy`, a process worker, real retrains.

- one model promoted 1 h ago (inside its 6 h cooldown), two 7 h ago (outside it: they retrain);
- BURST drift.detected and performance.degraded events, round-robin over the models and both kinds,
  emitted within a few seconds, while the test holds the retrain lock of one free model;
- then benchmarks/load_account.py's accounting, as `make load` does it: no event lost (each stored and
  either starting a run or inside its own model's trigger window), every run's decision in the audit
  log, the cooldown model only skips, both free models train (promote or reject-model), the other free
  model decides while the held one waits, and no two runs of one deployment overlap.

The free models' challengers are rejected, not promoted: the e2e seed champion was refit on its
hold-out week, so the gate has no hold-out row neither model trained on. A rejection is a real
train -> gate decision, which is what the accounting asks of a free model; `make load-short` and
`make load` seed without refit and see promotions. No timed assertion: the test prints its timings
(LOAD-CI-TIMINGS on stderr).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

import stack as stack_mod
from benchmarks.load import hold_lock_while_firing, settle_and_account
from benchmarks.load_stack import write_specs
from tests.e2e.harness import ROOT, WAIT, Seed, clone_champion, deploy
from tests.support.servers import STACK_BACKENDS

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

MODELS = 3  # the first inside its cooldown; the other two outside it, the first of those behind its lock
BURST = 30  # events: 5 of each kind per model
RATE = 600.0  # events a minute: the burst is emitted in about 3 s


# The load test is about the PostgreSQL backend: with EVERGREEN_TEST_POSTGRES=1 (CI) it runs there only.
@pytest.mark.parametrize("stack_backend", [STACK_BACKENDS[-1]], indirect=True)
def test_burst_on_three_models_is_accounted_for(
    e2e_seed: Seed, prefect_backend_server, mlflow_server, prefect_worker, stack_env, tmp_path: Path
) -> None:
    from deployments import render_prefect_yaml, work_queues
    from stack.queues import ensure_work_queues

    t0 = time.monotonic()
    tag = uuid.uuid4().hex[:6]
    models = [f"load-{tag}-{i}" for i in range(MODELS)]
    free = models[1:]
    in_cooldown = {m: m not in free for m in models}
    pool = f"load-pool-{tag}"
    api = prefect_backend_server.api_url

    home = tmp_path / "home"
    shutil.copytree(e2e_seed.home / "data-registry", home / "data-registry", symlinks=True)
    specs = write_specs(tmp_path / "models", models)
    env = stack_env(
        prefect=prefect_backend_server,
        mlflow=mlflow_server,
        home=home,
        EVERGREEN_MODELS_DIR=str(tmp_path / "models"),
    )
    for m in models:
        clone_champion(e2e_seed, m, timedelta(hours=1 if in_cooldown[m] else 7))
    stack_mod.create_work_pool(api, pool, env=env)
    ensure_work_queues(api, pool, work_queues())
    prefect_file = tmp_path / "prefect.yaml"
    prefect_file.write_text(render_prefect_yaml(specs, work_pool=pool))
    deploy_s = deploy(prefect_file, env)
    prefect_worker(pool, server=prefect_backend_server, cwd=ROOT, env=env)
    setup_s = time.monotonic() - t0

    args = argparse.Namespace(rate=RATE, minutes=BURST / RATE, drain_timeout=WAIT)
    fired, emission, lock_check = hold_lock_while_firing(args, models, free, pool)
    acc, runs, _, drain_s = settle_and_account(api, pool, fired, in_cooldown, lock_check, WAIT)
    timings = {
        "backend": prefect_backend_server.backend,
        "setup_s": round(setup_s, 1),
        "deploy_s": round(deploy_s, 1),
        "burst_s": emission["seconds"],
        "drain_after_burst_s": drain_s,
        "total_s": round(time.monotonic() - t0, 1),
        "runs": acc.runs,
    }
    sys.stderr.write(f"\nLOAD-CI-TIMINGS {json.dumps(timings, default=str)}\n")

    assert acc.failures == [], acc.failures
    events = acc.events
    assert events["emitted"] == BURST and events["stored_by_server"] == BURST
    assert events["lost"] == 0 and events["unexplained"] == 0
    assert events["started_run"] + events["in_trigger_window"] == BURST
    assert events["started_run"] >= 2 * MODELS  # each model's first event of each kind started a run
    assert acc.runs["created"] == len(runs) >= 2 * MODELS
    assert acc.runs["states"] == {"COMPLETED": len(runs)}, acc.runs
    assert acc.runs["without_audit_decision"] == 0
    assert set(acc.runs["decisions"]) <= {"skip", "promote", "reject-model"}
    iso = acc.isolation
    assert iso["cooldown_models_that_trained"] == [] and iso["free_models_that_never_trained"] == []
    assert iso["first_events_without_run"] == [] and iso["same_deployment_overlaps"] == 0
    assert lock_check["held"] == free[0] and lock_check["others_decided_while_held"] is True
    assert lock_check["held_model_runs_finished_while_held"] == 0
