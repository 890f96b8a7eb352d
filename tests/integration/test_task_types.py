"""One spec per task type (binary, multiclass, regression) end to end on real parts (issue 10).

Real DVC registry + remote, real GX, real MLflow server, the actual ingest and retrain flows against
the real Prefect API: ingest -> retrain (registered, gated, champion) -> ingest -> retrain judged
against that champion; the champion's pyfunc predicts the natural output (class probabilities by
label, or values). The option matrix itself runs in the pure core: tests/unit/test_spec_matrix.py.
"""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from adapters import mlflow_registry as model_registry
from evergreen.settings import get_settings
from tests.support.builders import write_batch, write_spec
from tests.unit.test_spec_matrix import CLASSES, spec_dict, synth_frame

pytestmark = [pytest.mark.slow, pytest.mark.integration]

WEEK = 7 * 24


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_task_type_ingest_retrain_gate_champion(env, task, tmp_path, monkeypatch):
    from flows.ingest import ingest
    from flows.retrain import retrain

    model = f"{task[:5]}-{tmp_path.name[-6:].lower().replace('_', '-')}"
    raw = spec_dict(task, name=model, estimator="sklearn" if task == "multiclass" else "lightgbm")
    raw["training"]["holdout"] = {"period": "2D"}
    models = tmp_path / "models"
    write_spec(models, raw)
    monkeypatch.setenv("EVERGREEN_MODELS_DIR", str(models))
    frame = synth_frame(task, weeks=4, seed=1)

    first = ingest(model=model, path=write_batch(frame.iloc[: 3 * WEEK], tmp_path / "w0-2.parquet"))
    assert first["status"] == "ingested", first
    r1 = retrain(model=model, reason="manual")
    assert r1["status"] == "promoted" and r1["version"] == "1", r1
    metric = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}[task]
    assert r1["decision"]["metric"] == metric and np.isfinite(r1["metrics"][f"holdout_{metric}"])

    # A week later, the challenger is judged against that champion on the same unseen hold-out.
    ingest(model=model, path=write_batch(frame.iloc[3 * WEEK :], tmp_path / "w3.parquet"))
    r2 = retrain(model=model, reason="manual", force=True)
    decision = r2["decision"]
    assert r2["version"] == "2" and decision["champion_version"] == "1", r2
    assert decision["ci_low"] is not None and decision["n_resamples"] > 0
    assert r2["status"] == ("promoted" if decision["passed"] else "rejected")

    cl = model_registry.client(get_settings())
    champ = cl.get_model_version_by_alias(model, "champion")
    assert champ.version == r2["champion_version"]
    assert json.loads(champ.tags["gate_decision"])["passed"] is True

    # pyfunc predicts the natural output; the sklearn flavour still loads the Pipeline Evergreen scores with.
    features = frame[["x1", "x2", "c"]].tail(20)
    out = mlflow.pyfunc.load_model(f"models:/{model}@champion").predict(features)
    if task == "regression":
        assert isinstance(out, np.ndarray) and out.shape == (20,) and np.isfinite(out).all()
    else:
        assert isinstance(out, pd.DataFrame)
        assert list(out.columns) == (["no", "yes"] if task == "binary" else CLASSES)
        np.testing.assert_allclose(out.to_numpy().sum(axis=1), 1.0, rtol=1e-6)
    sk = model_registry.load_sklearn(f"models:/{model}@champion")
    assert getattr(sk, "evergreen_task", None) == task
