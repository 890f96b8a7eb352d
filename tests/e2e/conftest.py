"""End-to-end fixtures: the real prefect.yaml deployed to a real Prefect server, a real process worker,
a real MLflow server, and a real git+DVC data registry.

The servers come from the session fixtures of tests/support/servers.py (``prefect_backend_server``,
``mlflow_server``, ``prefect_worker``, ``stack_env``); the driver (`Stack`, `Seed`, deploy and polling
helpers) is tests/e2e/harness.py. Layout per Prefect backend (SQLite, and PostgreSQL with
EVERGREEN_TEST_POSTGRES=1):

- ``e2e_seed`` (session): ingests Elec2 weeks 0..9 into a fresh data registry and trains a champion on
  them, in-process, once per backend for the whole run (test_automations.py and test_load_burst.py
  clone it; tests only add their own spec files to its models dir).
- ``e2e`` (function): a stack for one test under its own model name ``e2e-<hex>``:
  * the spec is models/elec2.yaml renamed;
  * the data registry is a copy of the seed's (git history and DVC cache included);
  * the champion is a new registry entry of the seed's trained model, with the seed version's lineage
    tags; its promotion time is `promoted_ago` (default: 7 h ago, outside the 6 h cooldown);
  * prefect.yaml is rendered for the model, with every "elec2" renamed and the work pool unique to
    the test, then deployed with `prefect --no-prompt deploy --all` from the repo root;
  * one process worker polls that pool.

  A unique model name gives every test its own automation buckets (`for_each` on the resource id),
  its own cooldown and its own events; a unique pool means no worker picks up another test's runs.

Nothing Prefect, MLflow, DVC or GX does is mocked; every wait polls with a generous deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pandas as pd
import pytest

import stack as stack_mod
from tests.e2e.harness import (
    ROOT,
    SEED_WEEKS,
    TERMINAL,
    WAIT,
    Seed,
    Stack,
    clone_champion,
    deploy,
    parse_time,
    read_events,
    related_id,
    render_prefect_yaml,
    wait_for,
)
from tests.support.builders import elec2_spec_dict, elec2_weeks, write_batch, write_spec
from tests.support.servers import refresh_prefect

# what the e2e tests import from here (kept for them; new code imports tests.e2e.harness)
__all__ = [
    "ROOT",
    "SEED_WEEKS",
    "TERMINAL",
    "WAIT",
    "Seed",
    "Stack",
    "deploy",
    "parse_time",
    "read_events",
    "related_id",
    "render_prefect_yaml",
    "wait_for",
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "champion_promoted(delta): when the e2e champion was promoted")


@pytest.fixture(scope="session")
def e2e_weeks() -> list[pd.DataFrame]:
    return elec2_weeks()


@pytest.fixture(scope="session")
def e2e_seed(prefect_backend_server, mlflow_server, tmp_path_factory, e2e_weeks) -> Seed:
    """Elec2 weeks 0..9 in a data registry and a champion trained on them (in-process, once per backend)."""
    root = tmp_path_factory.mktemp(f"e2e-seed-{prefect_backend_server.backend}")
    model = f"seed-{uuid.uuid4().hex[:8]}"
    spec = elec2_spec_dict()
    # These tests exercise the cooldown mechanics at a 6 h scale; elec2 ships a 27D policy cooldown.
    spec["triggers"]["cooldown"] = "6h"
    models = root / "models"
    write_spec(models, {**spec, "name": model})
    env = {
        "EVERGREEN_HOME": str(root / "home"),
        "EVERGREEN_MODELS_DIR": str(models),
        "PREFECT_API_URL": prefect_backend_server.api_url,
        "PREFECT_HOME": str(root / "prefect-client"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        "EVERGREEN_MLFLOW_TRACKING_URI": mlflow_server.url,
    }
    mp = pytest.MonkeyPatch()
    for k, v in env.items():
        mp.setenv(k, v)
    refresh_prefect()
    try:
        from flows.ingest import ingest
        from flows.retrain import retrain

        ingest(model=model, path=write_batch(pd.concat(e2e_weeks[:SEED_WEEKS]), root / "weeks-0-9.parquet"))
        out = retrain(model=model, reason="manual")
        assert out["status"] == "promoted", out
    finally:
        mp.undo()
        refresh_prefect()
    return Seed(
        home=root / "home",
        models_dir=models,
        spec=spec,
        model=model,
        version=out["version"],
        weeks=e2e_weeks,
    )


@pytest.fixture
def e2e(
    request, e2e_seed, prefect_backend_server, mlflow_server, prefect_worker, stack_env, tmp_path
) -> Iterator[Stack]:
    """One test's stack (see the module docstring). `@pytest.mark.champion_promoted(timedelta)` sets the
    champion's promotion time; the default is 7 h ago (outside elec2's 6 h cooldown)."""
    marker = request.node.get_closest_marker("champion_promoted")
    promoted_ago = marker.args[0] if marker else timedelta(hours=7)
    model = f"e2e-{uuid.uuid4().hex[:8]}"
    pool = f"e2e-pool-{uuid.uuid4().hex[:6]}"
    home = tmp_path / "home"
    shutil.copytree(e2e_seed.home / "data-registry", home / "data-registry", symlinks=True)
    write_spec(e2e_seed.models_dir, {**e2e_seed.spec, "name": model})
    env = stack_env(
        prefect=prefect_backend_server,
        mlflow=mlflow_server,
        home=home,
        EVERGREEN_MODELS_DIR=str(e2e_seed.models_dir),
    )
    clone_champion(e2e_seed, model, promoted_ago)
    prefect_file = render_prefect_yaml(model, pool, tmp_path / "prefect.yaml")
    stack = Stack(
        model=model, pool=pool, api_url=prefect_backend_server.api_url, env=env, seed=e2e_seed, tmp=tmp_path
    )
    stack_mod.create_work_pool(prefect_backend_server.api_url, pool, env=env)
    stack.deploy_seconds = deploy(prefect_file, env)
    stack.worker = prefect_worker(pool, server=prefect_backend_server, cwd=ROOT, env=env)
    yield stack
    with contextlib.suppress(Exception):
        _report(request.node.name, stack)


def _report(test: str, stack: Stack) -> None:
    """Per-test timings to stderr (and EVERGREEN_E2E_TIMINGS_FILE when set)."""
    if not stack.timings:
        return
    line = json.dumps({"test": test, **{k: round(v, 3) for k, v in stack.timings.items()}})
    sys.stderr.write(f"\nE2E-TIMINGS {line}\n")
    out = os.environ.get("EVERGREEN_E2E_TIMINGS_FILE")
    if out:
        with open(out, "a") as fh:
            fh.write(line + "\n")
