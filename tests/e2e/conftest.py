"""End-to-end fixtures: the real prefect.yaml deployed to a real Prefect server, a real process worker,
a real MLflow server, and a real git+DVC data registry.

Layout per Prefect backend (SQLite, and PostgreSQL with EVERGREEN_TEST_POSTGRES=1):

- ``e2e_seed`` (module): ingests Elec2 weeks 0..9 into a fresh data registry and trains a champion on
  them, in-process, once.
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
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from evergreen.datasets import prepare_elec2, weekly_batches
from tests.prefect_events import read_events

ROOT = Path(__file__).resolve().parents[2]
SEED_WEEKS = 10
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
WAIT = float(os.environ.get("EVERGREEN_E2E_TIMEOUT", "900"))  # generous: a loaded 2-core CI box


def _refresh_prefect() -> None:
    if "prefect.context" in sys.modules:
        sys.modules["prefect.context"].refresh_global_settings_context()


def wait_for(what: str, probe: Callable[[], Any], timeout: float = WAIT, interval: float = 0.5) -> Any:
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# ------------------------------------------------------------------------------------------ events




def related_id(event: dict[str, Any], role: str) -> str | None:
    """The id of the related resource with `role`, without its `prefect.<kind>.` prefix."""
    for r in event.get("related", []):
        if r.get("prefect.resource.role") == role:
            return r["prefect.resource.id"].rsplit(".", 1)[-1]
    return None


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


# -------------------------------------------------------------------------------------------- seed


@dataclass
class Seed:
    home: Path
    models_dir: Path
    spec: dict[str, Any]
    model: str
    version: str
    weeks: list[pd.DataFrame]


@pytest.fixture(scope="module")
def e2e_weeks() -> list[pd.DataFrame]:
    return weekly_batches(prepare_elec2(ROOT / "seeds" / "elec2" / "electricity.csv"), "timestamp")


@pytest.fixture(scope="module")
def e2e_seed(prefect_backend_server, mlflow_server, tmp_path_factory, e2e_weeks) -> Any:
    """Elec2 weeks 0..9 in a data registry and a champion trained on them (in-process, once per backend)."""
    root = tmp_path_factory.mktemp(f"e2e-seed-{prefect_backend_server.backend}")
    models = root / "models"
    models.mkdir()
    spec = yaml.safe_load((ROOT / "models" / "elec2.yaml").read_text())
    # These tests exercise the cooldown mechanics at a 6 h scale; elec2 ships a 27D policy cooldown.
    spec["triggers"]["cooldown"] = "6h"
    model = f"seed-{uuid.uuid4().hex[:8]}"
    (models / f"{model}.yaml").write_text(yaml.safe_dump({**spec, "name": model}))
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
    _refresh_prefect()
    try:
        from flows.ingest import ingest
        from flows.retrain import retrain

        path = root / "weeks-0-9.parquet"
        pd.concat(e2e_weeks[:SEED_WEEKS]).to_parquet(path, index=False)
        ingest(model=model, path=str(path))
        out = retrain(model=model, reason="manual")
        assert out["status"] == "promoted", out
    finally:
        mp.undo()
        _refresh_prefect()
    return Seed(
        home=root / "home", models_dir=models, spec=spec, model=model, version=out["version"], weeks=e2e_weeks
    )


# -------------------------------------------------------------------------------------- the stack


def render_prefect_yaml(model: str, pool: str, dest: Path) -> Path:
    """The repo's prefect.yaml for another model: every "elec2" renamed, the work pool replaced."""
    raw = yaml.safe_load((ROOT / "prefect.yaml").read_text())

    def rename(node: Any) -> Any:
        if isinstance(node, dict):
            return {rename(k): rename(v) for k, v in node.items()}
        if isinstance(node, list):
            return [rename(v) for v in node]
        return node.replace("elec2", model) if isinstance(node, str) else node

    raw = rename(raw)
    for dep in raw["deployments"]:
        dep["work_pool"] = {**dep["work_pool"], "name": pool}
    raw.pop("definitions", None)
    dest.write_text(yaml.safe_dump(raw, sort_keys=False))
    return dest


@dataclass
class Stack:
    model: str
    pool: str
    api_url: str
    env: dict[str, str]
    seed: Seed
    tmp: Path
    worker: Any = None
    deploy_seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def resource_id(self) -> str:
        return f"evergreen.model.{self.model}"

    # --- Prefect client (sync) ---------------------------------------------------------------

    def _client(self):
        from prefect.client.orchestration import get_client

        return get_client(sync_client=True)

    def deployment_id(self, flow: str) -> str:
        with self._client() as c:
            return str(c.read_deployment_by_name(f"{flow}/{self.model}").id)

    def run_deployment(self, flow: str, **parameters: Any) -> str:
        """Create a flow run of `<flow>/<model>` (what `prefect deployment run` does); returns its id."""
        with self._client() as c:
            dep = c.read_deployment_by_name(f"{flow}/{self.model}")
            return str(c.create_flow_run_from_deployment(dep.id, parameters=parameters).id)

    def runs(self, flow: str) -> list[Any]:
        """Flow runs of `<flow>/<model>` created on demand (automation or API), not by its cron schedule."""
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
        from prefect.client.schemas.sorting import FlowRunSort

        dep = self.deployment_id(flow)
        with self._client() as c:
            runs = c.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[uuid.UUID(dep)])),
                sort=FlowRunSort.START_TIME_ASC,
                limit=200,
            )
        return sorted((r for r in runs if not r.auto_scheduled), key=lambda r: r.created)

    def flow_run(self, run_id: str) -> Any:
        with self._client() as c:
            return c.read_flow_run(uuid.UUID(str(run_id)))

    def wait_run(self, run_id: str, timeout: float = WAIT) -> Any:
        def done():
            run = self.flow_run(run_id)
            return run if run.state_type.value in TERMINAL else None

        return wait_for(f"flow run {run_id} to finish", done, timeout, interval=1.0)

    # --- events --------------------------------------------------------------------------------

    def events(self, names: list[str] | None = None) -> list[dict[str, Any]]:
        return read_events(self.api_url, resource_id=self.resource_id, names=names)

    def wait_events(self, names: list[str], count: int = 1, timeout: float = WAIT) -> list[dict[str, Any]]:
        return wait_for(
            f"{count} x {names} for {self.model}",
            lambda: evs if len(evs := self.events(names)) >= count else None,
            timeout,
        )

    def emit(self, event: str, payload: dict[str, Any]) -> str:
        """Emit one Evergreen event from this (test) process, through the same helper the flows use."""
        from prefect.events.worker import EventsWorker

        from adapters.prefect_api import emit

        ev = emit(event, self.model, payload)
        EventsWorker.drain_all(timeout=60)
        return str(ev.id)

    # --- registry ------------------------------------------------------------------------------

    def mlflow(self):
        from evergreen.settings import get_settings
        from adapters import mlflow_registry as model_registry

        return model_registry.client(get_settings())

    def versions(self) -> dict[str, Any]:
        return {str(v.version): v for v in self.mlflow().search_model_versions(f"name='{self.model}'")}

    def write_batch(self, frame: pd.DataFrame, name: str) -> str:
        path = self.tmp / name
        frame.to_csv(path, index=False) if path.suffix == ".csv" else frame.to_parquet(path, index=False)
        return str(path)


def _clone_champion(seed: Seed, model: str, promoted_ago: timedelta | None) -> str:
    """Register the seed's trained model under `model` with the seed version's tags; make it champion."""
    from evergreen.settings import get_settings
    from adapters import mlflow_registry as model_registry

    settings = get_settings()
    cl = model_registry.client(settings)
    src = cl.get_model_version(seed.model, seed.version)
    cl.create_registered_model(model, description="e2e copy of the seed champion")
    skip = {"champion_since", "promoted_at", "promotion_reason", "replaced_version"}
    tags = {k: v for k, v in src.tags.items() if k not in skip}
    import mlflow

    # register_model resolves MLflow 3's `models:/m-...` logged-model source and waits until READY
    mv = mlflow.register_model(src.source, model, tags=tags)
    model_registry.set_alias(
        settings, model, model_registry.CHAMPION, str(mv.version), reason="manual", previous=None
    )
    if promoted_ago is not None:
        when = (datetime.now(UTC) - promoted_ago).isoformat()
        cl.set_model_version_tag(model, str(mv.version), "promoted_at", when)
    return str(mv.version)


def deploy(prefect_file: Path, env: dict[str, str]) -> float:
    """`prefect --no-prompt deploy --all` from the repo root; returns the seconds it took."""
    t0 = time.monotonic()
    full = {**os.environ, **env, "PREFECT_CLI_COLORS": "false", "PREFECT_CLI_WRAP_LINES": "false"}
    res = subprocess.run(
        [
            str(Path(sys.executable).with_name("prefect")),
            "--no-prompt",
            "deploy",
            "--all",
            "--prefect-file",
            str(prefect_file),
        ],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=WAIT,
        stdin=subprocess.DEVNULL,
    )
    assert res.returncode == 0, f"prefect deploy failed:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
    return time.monotonic() - t0


@pytest.fixture
def e2e(
    request, e2e_seed, prefect_backend_server, mlflow_server, prefect_worker, stack_env, tmp_path
) -> Stack:
    """One test's stack (see the module docstring). `@pytest.mark.champion_promoted(timedelta)` sets the
    champion's promotion time; the default is 7 h ago (outside elec2's 6 h cooldown)."""
    marker = request.node.get_closest_marker("champion_promoted")
    promoted_ago = marker.args[0] if marker else timedelta(hours=7)
    model = f"e2e-{uuid.uuid4().hex[:8]}"
    pool = f"e2e-pool-{uuid.uuid4().hex[:6]}"
    home = tmp_path / "home"
    shutil.copytree(e2e_seed.home / "data-registry", home / "data-registry", symlinks=True)
    (e2e_seed.models_dir / f"{model}.yaml").write_text(yaml.safe_dump({**e2e_seed.spec, "name": model}))
    env = stack_env(
        prefect=prefect_backend_server,
        mlflow=mlflow_server,
        home=home,
        EVERGREEN_MODELS_DIR=str(e2e_seed.models_dir),
    )
    _clone_champion(e2e_seed, model, promoted_ago)
    prefect_file = render_prefect_yaml(model, pool, tmp_path / "prefect.yaml")
    stack = Stack(
        model=model, pool=pool, api_url=prefect_backend_server.api_url, env=env, seed=e2e_seed, tmp=tmp_path
    )
    import stack as stack_mod

    stack_mod.create_work_pool(prefect_backend_server.api_url, pool, env=env)
    stack.deploy_seconds = deploy(prefect_file, env)
    stack.worker = prefect_worker(pool, server=prefect_backend_server, cwd=ROOT, env=env)
    yield stack
    with contextlib.suppress(Exception):
        _report(request, stack)


def _report(request, stack: Stack) -> None:
    if stack.timings:
        line = json.dumps({"test": request.node.name, **{k: round(v, 3) for k, v in stack.timings.items()}})
        sys.stderr.write(f"\nE2E-TIMINGS {line}\n")
        out = os.environ.get("EVERGREEN_E2E_TIMINGS_FILE")
        if out:
            with open(out, "a") as fh:
                fh.write(line + "\n")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "champion_promoted(delta): when the e2e champion was promoted")
