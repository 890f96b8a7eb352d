"""An online (river) model end to end on real parts (issue 12).

Real DVC registry + remote, real GX, real MLflow server, the actual ingest and retrain flows against the
real Prefect API: ingest -> retrain (fresh online model, gated, registered, champion) -> pyfunc predicts
exactly as the same model trained in-process -> next batch ingested -> retrain continues that champion
(partial_fit on the rows after its train_end, tagged online with its base version) and is gated again.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pytest

from adapters import mlflow_registry as model_registry
from evergreen import training
from evergreen.settings import get_settings
from evergreen.spec import ModelSpec
from tests.support.builders import write_batch, write_spec
from tests.unit.test_spec_matrix import spec_dict, synth_frame

pytestmark = [pytest.mark.slow, pytest.mark.integration]

WEEK = 7 * 24


def test_online_model_trained_gated_served_and_continued(env, tmp_path, monkeypatch):
    from flows.ingest import ingest
    from flows.retrain import retrain

    model = f"online-{tmp_path.name[-6:].lower().replace('_', '-')}"
    raw = spec_dict("binary", name=model)
    raw["training"]["estimator"] = {
        "kind": "river",
        "class_path": "river.forest.ARFClassifier",
        "params": {"n_models": 3},
    }
    raw["training"]["holdout"] = {"period": "2D"}
    models = tmp_path / "models"
    write_spec(models, raw)
    monkeypatch.setenv("EVERGREEN_MODELS_DIR", str(models))
    spec = ModelSpec.model_validate(raw)
    frame = synth_frame("binary", weeks=4, seed=3)

    assert (
        ingest(model=model, path=write_batch(frame.iloc[: 3 * WEEK], tmp_path / "w0.parquet"))["status"]
        == "ingested"
    )
    r1 = retrain(model=model, reason="manual")
    assert r1["status"] == "promoted" and r1["version"] == "1", r1
    assert r1["training_mode"] == "full"

    # pyfunc serves exactly what the same online model trained in-process predicts.
    split = training.split(frame.iloc[: 3 * WEEK], spec)
    local, _ = training.fit(spec, split.train)
    features = frame[spec.feature_names].tail(50)
    served = mlflow.pyfunc.load_model(f"models:/{model}@champion").predict(features)
    np.testing.assert_array_equal(served["yes"].to_numpy(), training.predict_scores(local, features))
    v1 = mlflow.sklearn.load_model(f"models:/{model}/1")
    np.testing.assert_array_equal(
        training.predict_scores(v1, features), training.predict_scores(local, features)
    )

    # The next batch: the retrain continues v1 on the rows after its train_end and is gated again.
    assert (
        ingest(model=model, path=write_batch(frame.iloc[3 * WEEK :], tmp_path / "w3.parquet"))["status"]
        == "ingested"
    )
    r2 = retrain(model=model, reason="manual", force=True)
    assert r2["version"] == "2" and r2["training_mode"] == "online" and r2["base_version"] == "1", r2
    decision = r2["decision"]
    assert decision["champion_version"] == "1" and decision["n_resamples"] > 0
    assert r2["status"] == ("promoted" if decision["passed"] else "rejected")

    cl = model_registry.client(get_settings())
    mv2 = cl.get_model_version(model, "2")
    assert mv2.tags["evergreen.training_mode"] == "online" and mv2.tags["evergreen.base_version"] == "1"
    new_rows = int(mv2.tags["evergreen.online_rows"])
    assert new_rows > 0 and mv2.tags["train_start"] > cl.get_model_version(model, "1").tags["train_end"]
    v2 = mlflow.sklearn.load_model(f"models:/{model}/2")
    # Continued, not refit: v2 learned v1's rows and then the new ones.
    assert v2.named_steps["model"].n_learned_ == v1.named_steps["model"].n_learned_ + new_rows
    assert len(cl.search_model_versions(f"name='{model}'")) == 2  # one version per labelled batch
