"""The e2e driver: one test's stack (`Stack`), the seed it is cloned from (`Seed`), and the steps that
build it (render prefect.yaml for a model, deploy it, clone the seed's champion), plus polling and
event helpers. The fixtures that use them are in tests/e2e/conftest.py.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.support.builders import ROOT, write_batch
from tests.support.prefect_events import read_events

__all__ = [
    "ROOT",
    "SEED_WEEKS",
    "TERMINAL",
    "WAIT",
    "Seed",
    "Stack",
    "clone_champion",
    "deploy",
    "parse_time",
    "read_events",
    "related_id",
    "render_prefect_yaml",
    "wait_for",
]

SEED_WEEKS = 10
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
WAIT = float(os.environ.get("EVERGREEN_E2E_TIMEOUT", "900"))  # generous: a loaded 2-core CI box


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


# -------------------------------------------------------------------------------------- the stack


def render_prefect_yaml(model: str, pool: str, dest: Path) -> Path:
    """The e2e model's deployments, rendered from models/elec2.yaml under the test's model name."""
    from deployments import render_prefect_yaml as render
    from evergreen.spec import load_spec, parse_spec

    spec = load_spec("elec2", ROOT / "models")
    dest.write_text(render([parse_spec({**spec.model_dump(mode="json"), "name": model})], work_pool=pool))
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
        from adapters import mlflow_registry as model_registry
        from evergreen.settings import get_settings

        return model_registry.client(get_settings())

    def versions(self) -> dict[str, Any]:
        return {str(v.version): v for v in self.mlflow().search_model_versions(f"name='{self.model}'")}

    def write_batch(self, frame: pd.DataFrame, name: str) -> str:
        return write_batch(frame, self.tmp / name)


def clone_champion(seed: Seed, model: str, promoted_ago: timedelta | None) -> str:
    """Register the seed's trained model under `model` with the seed version's tags; make it champion."""
    from adapters import mlflow_registry as model_registry
    from evergreen.settings import get_settings

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
    from stack.deploy import deploy_prefect_file

    return deploy_prefect_file(prefect_file, env, cwd=ROOT, timeout=WAIT)
