"""The label-free estimate as a trigger, on real servers (Prefect, MLflow, DVC, GX; flows in-process).

A champion trained on Elec2 weeks 0..9 stores its CBPE calibrator. The rendered prefect.yaml (with
`triggers.estimated` enabled) is deployed to a real Prefect server. Two unlabelled batches go through
the monitor: a later ordinary week (estimate fine, label "false"), then the 336 rows of weeks 10..29
the champion is least sure about (a covariate shift into its uncertain region; their realised
accuracy is far below the floor). Only the second one's `evergreen.performance.estimated` carries
`evergreen.estimate-degraded=true`, and the automation creates a retrain run for it with reason
`estimated`. No worker: the run being created is the automation's whole job.
"""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

import stack
from adapters import mlflow_registry as model_registry
from deployments import render_prefect_yaml
from evergreen import training
from evergreen.estimate import Calibrator
from evergreen.metrics import metric_value
from evergreen.settings import get_settings
from evergreen.spec import parse_spec
from tests.e2e.harness import deploy, wait_for
from tests.support.builders import ROOT, elec2_spec_dict, elec2_weeks, write_batch, write_spec
from tests.support.prefect_events import wait_events

pytestmark = [pytest.mark.slow, pytest.mark.integration]

FLOOR = 0.7


def _spec(model: str) -> dict:
    raw = elec2_spec_dict(model)
    raw["data"]["path"] = model
    raw["gate"]["n_bootstrap"] = 200
    # only the estimated automation: a drift retrain on the same batches would hide what is tested
    for other in ("drift", "performance", "volume"):
        raw["triggers"][other]["enabled"] = False
    raw["triggers"]["estimated"] = {"enabled": True, "metric": "accuracy", "floor": FLOOR, "priority": 1}
    raw.pop("schedule", None)
    return raw


def _retrain_runs(model: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as c:
        dep = c.read_deployment_by_name(f"retrain/{model}")
        return c.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])))


def test_an_unlabelled_degraded_batch_starts_a_retrain_through_the_estimated_automation(
    prefect_server, mlflow_server, stack_env, tmp_path, monkeypatch
):
    from flows.ingest import ingest
    from flows.monitor import monitor
    from flows.retrain import retrain

    monkeypatch.chdir(ROOT)
    model = f"est-{uuid.uuid4().hex[:8]}"
    pool = f"est-pool-{uuid.uuid4().hex[:6]}"
    models = tmp_path / "models"
    raw = _spec(model)
    write_spec(models, raw)
    env = stack_env(
        prefect=prefect_server, mlflow=mlflow_server, home=tmp_path / "home", EVERGREEN_MODELS_DIR=str(models)
    )
    weeks = elec2_weeks()
    ingest(model=model, path=write_batch(pd.concat(weeks[:10]), tmp_path / "w0-9.parquet"))
    trained = retrain(model=model, reason="manual")
    assert trained["status"] == "promoted", trained

    # the version stores its calibrator, named by a tag, loadable without pickle
    settings = get_settings()
    champ = model_registry.get_champion(model_registry.client(settings), model)
    assert champ is not None and champ.tags["calibrator"] == "calibrator.json"
    cal = Calibrator.model_validate_json(
        model_registry.load_artifact_text(settings, champ.run_id, "calibrator.json")
    )
    assert cal.rows == 336 and 0.5 < cal.reference["accuracy"] <= 1

    stack.create_work_pool(prefect_server.api_url, pool, env=env)
    (tmp_path / "prefect.yaml").write_text(render_prefect_yaml([parse_spec(raw)], work_pool=pool))
    deploy(tmp_path / "prefect.yaml", env)

    # an ordinary later week, unlabelled: estimated, not degraded
    fine = monitor(model=model, batch=write_batch(weeks[10].assign(**{"class": None}), tmp_path / "w10.csv"))
    assert fine["labelled_rows"] == 0 and fine["performance"] is None
    assert fine["estimate"]["degraded"] is False and fine["estimate"]["upper"] > FLOOR

    # the rows the champion is least sure about: a real degradation, measured without labels
    pool_rows = pd.concat(weeks[10:30], ignore_index=True)
    pipe = model_registry.load_sklearn(champ.model_uri)
    scores = training.predict_scores(pipe, pool_rows)
    hard = pool_rows.iloc[np.argsort(np.abs(scores - 0.5), kind="stable")[:336]].sort_values("timestamp")
    realised = metric_value(
        "accuracy", training.labels(hard, parse_spec(raw)), training.predict_scores(pipe, hard)
    )
    assert realised < FLOOR
    out = monitor(model=model, batch=write_batch(hard.assign(**{"class": None}), tmp_path / "hard.csv"))
    est = out["estimate"]
    assert out["labelled_rows"] == 0 and out["performance"] is None  # no labels: the estimate is all there is
    assert est["degraded"] is True and est["upper"] < FLOOR and est["metric"] == "accuracy"
    assert est["champion_version"] == champ.version and est["reference"] == pytest.approx(
        cal.reference["accuracy"]
    )

    events = wait_events(prefect_server.api_url, model, ["evergreen.performance.estimated"], 2)
    assert [e["resource"]["evergreen.estimate-degraded"] for e in events] == ["false", "true"]
    degraded_id = out["events"]["evergreen.performance.estimated"]
    assert events[1]["id"] == degraded_id

    # the automation turned the degraded estimate (and only it) into a retrain run
    (run,) = wait_for("the retrain run started by performance.estimated", lambda: _retrain_runs(model), 300)
    assert run.parameters["reason"] == "estimated"
    assert run.parameters["trigger_event_id"] == degraded_id
    assert run.parameters["model"] == model
