"""Two models side by side on real servers, each defined only by its YAML file: a binary classifier
(models/elec2.yaml, renamed) and the regression model (models/bike_sharing.yaml, renamed).

One data registry, one models dir, one work pool and one worker for both; prefect.yaml rendered from
the two specs by the real renderer and deployed with `prefect deploy`. The test shows:

- B's drifted batch runs B's chain (ingest -> monitor -> drift.detected -> retrain on its priority-2
  deployment -> gate -> register -> alias) while the test itself holds A's retrain lock: B's
  concurrency is its own (`evergreen-retrain-<B>`), and nothing starts for A.
- B inside its cooldown, A outside: a drift event for A and a performance event for B (B's drift
  automation already fired within its `within` window, which would absorb a second drift event before
  any run exists). A retrains and registers; B's run, on its priority-1 deployment, is skipped as
  cooldown. Each model's cooldown is its own.

Lean on purpose: no cron schedules in the test specs (fewer deployments), small estimators, no refit.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import stack as stack_mod
from deployments import render_prefect_yaml, retrain_deployments
from evergreen.datasets import seed_frame, weekly_batches
from evergreen.spec import parse_spec
from tests.e2e.harness import ROOT, TERMINAL, deploy, read_events, related_id, wait_for
from tests.support.builders import elec2_spec_dict, elec2_weeks, write_batch, write_spec

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

A_WEEKS = 10  # elec2 weeks 0..9 for A's champion
B_WEEKS = slice(20, 28)  # bike sharing weeks 20..27 (summer 2011) for B's champion; week 28 drifts
DRIFT_PAYLOAD = {"drift_score": 0.9, "drift_share": 0.6, "drifted_features": ["x"], "data_version": "e2e"}


def _bike_spec(name: str) -> dict[str, Any]:
    raw = yaml.safe_load((ROOT / "models" / "bike_sharing.yaml").read_text())
    raw.update(name=name, schedule=None)
    raw["training"].update(refit=False)
    raw["training"]["estimator"]["params"].update(n_estimators=50)
    raw["triggers"]["cooldown"] = "6h"
    # the drifted batch below also ruins B's RMSE; only the drift trigger is under test here
    raw["triggers"]["performance"]["floor"] = 1e6
    return raw


def _elec2_spec(name: str) -> dict[str, Any]:
    raw = elec2_spec_dict(name)
    raw.update(schedule=None)
    raw["training"].update(refit=False)
    raw["triggers"]["cooldown"] = "6h"
    return raw


def _hours_squeezed(week: pd.DataFrame) -> pd.DataFrame:
    """A real bike week whose hours (a critical feature) all fall in 0..11: still valid, clearly drifted."""
    out = week.copy()
    out["hr"] = out["hr"] // 2
    return out


def _set_promoted_at(model: str, when: datetime) -> None:
    from adapters import mlflow_registry as model_registry
    from evergreen.settings import get_settings

    cl = model_registry.client(get_settings())
    champ = cl.get_model_version_by_alias(model, "champion")
    cl.set_model_version_tag(model, str(champ.version), "promoted_at", when.isoformat())


class Pair:
    """The shared stack of the two models and the lookups the test needs."""

    def __init__(self, api_url: str, specs: dict[str, Any], tmp: Path, bike_next: pd.DataFrame) -> None:
        self.api_url = api_url
        self.specs = specs  # name -> ModelSpec
        self.a, self.b = list(specs)
        self.tmp = tmp
        self.bike_next = bike_next  # the bike week after B's training weeks

    def retrain_runs(self, model: str) -> list[Any]:
        """On-demand runs of every retrain deployment of `model` (one per priority it uses)."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import (
            DeploymentFilter,
            DeploymentFilterName,
            FlowFilter,
            FlowFilterName,
        )

        names = list(retrain_deployments(self.specs[model]).values())
        with get_client(sync_client=True) as c:
            runs = c.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["retrain"])),
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=names)),
                limit=100,
            )
        return sorted((r for r in runs if r.parameters.get("model") == model), key=lambda r: r.created)

    def deployment_of(self, run: Any) -> str:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as c:
            return str(c.read_deployment(run.deployment_id).name)

    def run_deployment(self, name: str, **parameters: Any) -> str:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as c:
            dep = c.read_deployment_by_name(name)
            return str(c.create_flow_run_from_deployment(dep.id, parameters=parameters).id)

    def wait_run(self, run_id: Any) -> Any:
        from prefect.client.orchestration import get_client

        def done():
            with get_client(sync_client=True) as c:
                run = c.read_flow_run(uuid.UUID(str(run_id)))
            return run if run.state_type.value in TERMINAL else None

        return wait_for(f"flow run {run_id} to finish", done, interval=1.0)

    def events(self, model: str, names: list[str] | None = None) -> list[dict[str, Any]]:
        return read_events(self.api_url, resource_id=f"evergreen.model.{model}", names=names)

    def wait_events(self, model: str, names: list[str], count: int = 1) -> list[dict[str, Any]]:
        return wait_for(
            f"{count} x {names} for {model}",
            lambda: evs if len(evs := self.events(model, names)) >= count else None,
        )

    def emit(self, event: str, model: str, payload: dict[str, Any]) -> str:
        from prefect.events.worker import EventsWorker

        from adapters.prefect_api import emit

        ev = emit(event, model, payload)
        EventsWorker.drain_all(timeout=60)
        return str(ev.id)

    def versions(self, model: str) -> dict[str, Any]:
        from adapters import mlflow_registry as model_registry
        from evergreen.settings import get_settings

        cl = model_registry.client(get_settings())
        return {str(v.version): v for v in cl.search_model_versions(f"name='{model}'")}

    def champion(self, model: str) -> str:
        from adapters import mlflow_registry as model_registry
        from evergreen.settings import get_settings

        return str(
            model_registry.client(get_settings()).get_model_version_by_alias(model, "champion").version
        )


@pytest.fixture
def pair(prefect_backend_server, mlflow_server, prefect_worker, stack_env, tmp_path) -> Pair:
    """A (elec2 copy) and B (bike sharing copy) with champions promoted 7 h ago, deployed, one worker."""
    tag = uuid.uuid4().hex[:6]
    a, b = f"two-a-{tag}", f"two-b-{tag}"
    models = tmp_path / "models"
    write_spec(models, _elec2_spec(a))
    write_spec(models, _bike_spec(b))
    env = stack_env(
        prefect=prefect_backend_server,
        mlflow=mlflow_server,
        home=tmp_path / "home",
        EVERGREEN_MODELS_DIR=str(models),
    )
    from flows.ingest import ingest
    from flows.retrain import retrain

    bike = weekly_batches(seed_frame("bike_sharing", ROOT / "seeds"), "timestamp")
    seeds = {a: pd.concat(elec2_weeks()[:A_WEEKS]), b: pd.concat(bike[B_WEEKS])}
    for model, frame in seeds.items():
        assert (
            ingest(model=model, path=write_batch(frame, tmp_path / f"{model}.parquet"))["status"]
            == "ingested"
        )
        out = retrain(model=model, reason="manual")
        assert out["status"] == "promoted", out
        _set_promoted_at(model, datetime.now(UTC) - timedelta(hours=7))  # outside the 6 h cooldown

    specs = {m: parse_spec(yaml.safe_load((models / f"{m}.yaml").read_text())) for m in (a, b)}
    pool = f"two-pool-{tag}"
    prefect_file = tmp_path / "prefect.yaml"
    prefect_file.write_text(render_prefect_yaml([specs[a], specs[b]], work_pool=pool))
    stack_mod.create_work_pool(prefect_backend_server.api_url, pool, env=env)
    deploy(prefect_file, env)
    prefect_worker(pool, server=prefect_backend_server, cwd=ROOT, env=env)
    return Pair(prefect_backend_server.api_url, specs, tmp_path, bike[B_WEEKS.stop])


def test_two_models_side_by_side(pair: Pair):
    from adapters.prefect_lock import model_lock

    s, a, b = pair, pair.a, pair.b
    champ_a, champ_b = s.champion(a), s.champion(b)
    versions_a = set(s.versions(a))

    # 1. B's drifted batch runs B's whole chain while A's retrain lock is held by this test
    with model_lock(a, wait_seconds=60):
        path = write_batch(_hours_squeezed(s.bike_next), s.tmp / "bike-drifted.parquet")
        ingest_run = s.wait_run(s.run_deployment(f"ingest/{b}", model=b, path=path))
        assert ingest_run.state_type.value == "COMPLETED", ingest_run.state
        (detected,) = s.wait_events(b, ["evergreen.drift.detected"])
        assert "hr" in detected["payload"]["drifted_features"]
        (run_b,) = wait_for("B's drift retrain", lambda: s.retrain_runs(b))
        assert run_b.parameters["reason"] == "drift"
        assert run_b.parameters["trigger_event_id"] == detected["id"]
        assert s.deployment_of(run_b) == f"{b}-p2"  # bike_sharing.yaml: drift retrains at priority 2
        run_b = s.wait_run(run_b.id)
        assert run_b.state_type.value == "COMPLETED", run_b.state
    (version_b,) = [v for k, v in s.versions(b).items() if k != champ_b]
    # the fixture's own registrations are events too: pick this trigger's
    registered = s.wait_events(b, ["evergreen.model.registered"], count=2)
    assert [e["payload"].get("trigger_event_id") for e in registered].count(detected["id"]) == 1
    assert version_b.tags["reason"] == "drift" and version_b.tags["trigger_event_id"] == detected["id"]
    assert version_b.tags["prefect_flow_run_id"] == str(run_b.id)
    decision = yaml.safe_load(version_b.tags["gate_decision"])
    assert decision["metric"] == "rmse"
    # the alias moved exactly when the gate passed
    passed = version_b.tags["gate_passed"] == "true"
    assert s.champion(b) == (str(version_b.version) if passed else champ_b)
    # the run turns COMPLETED before its process drains its events: wait for this trigger's verdict
    (verdict,) = wait_for(
        "B's promoted/rejected event",
        lambda: [
            e
            for e in s.events(b, ["evergreen.model.promoted", "evergreen.model.rejected"])
            if e["payload"].get("trigger_event_id") == detected["id"]
        ],
    )
    assert verdict["event"] == ("evergreen.model.promoted" if passed else "evergreen.model.rejected")
    # nothing happened to A: no retrain run, no drift, no new version
    assert s.retrain_runs(a) == [] and s.events(a, ["evergreen.drift.detected"]) == []
    assert set(s.versions(a)) == versions_a and s.champion(a) == champ_a

    # 2. B inside its cooldown, A outside: A retrains, B's run is skipped (cooldown)
    _set_promoted_at(b, datetime.now(UTC))
    eid_b = s.emit("evergreen.performance.degraded", b, {"metric": "rmse", "value": 500.0, "floor": 80.0})
    eid_a = s.emit("evergreen.drift.detected", a, DRIFT_PAYLOAD)
    (run_a,) = wait_for("A's drift retrain", lambda: s.retrain_runs(a))
    assert run_a.parameters["trigger_event_id"] == eid_a and s.deployment_of(run_a) == a
    run_b2 = wait_for(
        "B's performance retrain",
        lambda: [r for r in s.retrain_runs(b) if r.parameters.get("trigger_event_id") == eid_b],
    )[0]
    assert run_b2.parameters["reason"] == "performance" and s.deployment_of(run_b2) == b  # priority 1
    assert s.wait_run(run_a.id).state_type.value == "COMPLETED"
    assert s.wait_run(run_b2.id).state_type.value == "COMPLETED"
    (skipped,) = s.wait_events(b, ["evergreen.retrain.skipped"])
    assert skipped["payload"]["reason"] == "cooldown" and skipped["payload"]["trigger_event_id"] == eid_b
    assert related_id(skipped, "flow-run") == str(run_b2.id)
    reg_a = s.wait_events(a, ["evergreen.model.registered"], count=2)
    assert [e["payload"].get("trigger_event_id") for e in reg_a].count(eid_a) == 1
    assert s.events(a, ["evergreen.retrain.skipped"]) == []
    assert len(set(s.versions(a)) - versions_a) == 1
    assert len(s.versions(b)) == 2  # B's champion and step 1's version: the skipped run trained nothing
