"""A retrain with `training.engine: dask` (lightgbm.dask on a LocalCluster) is registered and gated like any other.

Real DVC, GX, MLflow server and Prefect API, the actual ingest and retrain flows: v1 is fitted in
process; after the next week, v2 is fitted by DaskLGBMClassifier on a 2-worker LocalCluster, judged
by the gate against v1, registered, and its pyfunc serves the natural output.
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
from tests.unit.test_spec_matrix import spec_dict, synth_frame

pytestmark = [pytest.mark.slow, pytest.mark.integration]

WEEK = 7 * 24


def test_dask_engine_retrain_is_registered_and_gated(env, tmp_path, monkeypatch):
    from flows.ingest import ingest
    from flows.retrain import retrain

    model = f"dask-{tmp_path.name[-6:].lower().replace('_', '-')}"
    raw = spec_dict("binary", name=model)
    raw["training"]["holdout"] = {"period": "2D"}
    models = tmp_path / "models"
    write_spec(models, raw)
    monkeypatch.setenv("EVERGREEN_MODELS_DIR", str(models))
    monkeypatch.delenv("EVERGREEN_DASK_ADDRESS", raising=False)
    frame = synth_frame("binary", weeks=4, seed=1)

    assert (
        ingest(model=model, path=write_batch(frame.iloc[: 3 * WEEK], tmp_path / "w0-2.parquet"))["status"]
        == "ingested"
    )
    r1 = retrain(model=model, reason="manual")
    assert r1["status"] == "promoted" and r1["version"] == "1", r1

    raw["training"]["engine"] = {"kind": "dask", "workers": 2}
    write_spec(models, raw)
    ingest(model=model, path=write_batch(frame.iloc[3 * WEEK :], tmp_path / "w3.parquet"))
    r2 = retrain(model=model, reason="manual", force=True)
    decision = r2["decision"]
    assert r2["version"] == "2" and decision["champion_version"] == "1", r2
    assert decision["ci_low"] is not None and decision["n_resamples"] > 0
    assert np.isfinite(r2["metrics"]["holdout_roc_auc"]) and r2["metrics"]["holdout_roc_auc"] > 0.8
    assert r2["status"] == ("promoted" if decision["passed"] else "rejected")

    cl = model_registry.client(get_settings())
    v2 = cl.get_model_version(model, "2")
    assert "gate_decision" in v2.tags and json.loads(v2.tags["gate_decision"])["champion_version"] == "1"
    sk = model_registry.load_sklearn(f"models:/{model}/2")
    assert getattr(sk, "evergreen_engine", None) == "dask:2"  # fitted by lightgbm.dask ...
    assert type(sk.steps[-1][1]).__name__ == "LGBMClassifier"  # ... served as a plain LightGBM model
    out = mlflow.pyfunc.load_model(f"models:/{model}/2").predict(frame[["x1", "x2", "c"]].tail(20))
    assert isinstance(out, pd.DataFrame) and list(out.columns) == ["no", "yes"]
    np.testing.assert_allclose(out.to_numpy().sum(axis=1), 1.0, rtol=1e-6)

    # The same champion's drift over a batch split into files, fanned out by Prefect's DaskTaskRunner,
    # equals measure_drift on the whole batch (evergreen.drift.partitioned).
    from adapters import dvc_rows
    from evergreen.drift import measure_drift
    from evergreen.spec import load_spec
    from flows.drift_partitioned import drift_partitioned
    from tests.unit.test_drift_partitioned import assert_reports_equal

    batch = synth_frame("binary", weeks=3, seed=9)
    batch["x1"] += 0.8  # drifted
    parts = tmp_path / "batch"
    parts.mkdir()
    for i, idx in enumerate(np.array_split(np.arange(len(batch)), 3)):
        batch.iloc[idx].to_parquet(parts / f"part-{i}.parquet")
    out = drift_partitioned(model=model, paths=[str(parts)], workers=2)
    champ = model_registry.get_champion(cl, model)
    assert champ is not None and out["champion_version"] == champ.version and out["partitions"] == 3
    spec = load_spec(model, models)
    single = measure_drift(
        dvc_rows.load_profile(get_settings(), champ), batch, spec.triggers.drift, features=spec.features
    )
    assert "x1" in single.drifted_features
    assert_reports_equal(single.model_dump(mode="json"), dict(out["report"]))
