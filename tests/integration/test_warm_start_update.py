"""`training.update` on real parts (issue 11 part 2): warm-start updates through the retrain flow.

The first retrain is a full fit; the next one continues the champion with a few LightGBM trees on the
newest window, is gated and registered like any model, and names its base version. After a rollback to
the full fit, the next update continues the RESTORED champion (its base and count come from the current
champion's tags, not from the newest version). After `refit_every` updates, and on drift, a retrain is a
full refit. Every version
records its training CPU seconds. Real DVC registry, real GX, real MLflow server, real Prefect API.
"""

from __future__ import annotations

import pytest

from adapters import mlflow_registry as model_registry
from evergreen.settings import get_settings
from tests.support.builders import write_batch, write_spec
from tests.unit.test_spec_matrix import spec_dict, synth_frame

pytestmark = [pytest.mark.slow, pytest.mark.integration]

DAY = 24
TREES = 10  # spec_dict's n_estimators: the full fit's tree count


def _trees(model: str, version: str) -> int:
    pipe = model_registry.load_sklearn(f"models:/{model}/{version}")
    return int(pipe.named_steps["model"].booster_.num_trees())


def test_updates_continue_the_champion_and_survive_a_rollback(env, tmp_path, monkeypatch):
    from flows.ingest import ingest
    from flows.retrain import retrain
    from flows.rollback import rollback

    model = f"update-{tmp_path.name[-6:].lower().replace('_', '-')}"
    raw = spec_dict("binary", name=model, window={"kind": "rolling", "period": "14D"})
    raw["training"]["holdout"] = {"period": "2D"}
    raw["training"]["update"] = {"trees": 4, "window": "7D", "refit_every": 1}
    models = tmp_path / "models"
    write_spec(models, raw)
    monkeypatch.setenv("EVERGREEN_MODELS_DIR", str(models))
    frame = synth_frame("binary", weeks=4, seed=5)
    first, last = frame.iloc[: 21 * DAY], frame.iloc[21 * DAY :]
    cl = model_registry.client(get_settings())

    assert ingest(model=model, path=write_batch(first, tmp_path / "w0-2.parquet"))["status"] == "ingested"
    full = retrain(model=model, reason="manual")
    assert full["status"] == "promoted" and full["training_mode"] == "full" and full["base_version"] is None
    assert full["seconds"]["train_cpu"] > 0 and full["metrics"]["train_cpu_seconds"] > 0, full
    v1 = cl.get_model_version(model, full["version"])
    assert v1.tags["evergreen.training_mode"] == "full" and v1.tags["evergreen.update_count"] == "0"
    assert float(v1.tags["train_cpu_seconds"]) > 0
    assert cl.get_run(v1.run_id).data.metrics["train_cpu_seconds"] > 0

    assert ingest(model=model, path=write_batch(last, tmp_path / "w3.parquet"))["status"] == "ingested"
    upd = retrain(model=model, reason="schedule", force=True)
    assert upd["status"] == "promoted", upd["detail"]  # gated like any model: passed, then the alias moved
    assert upd["training_mode"] == "update" and upd["base_version"] == full["version"], upd
    v2 = cl.get_model_version(model, upd["version"])
    assert v2.tags["evergreen.base_version"] == full["version"] and v2.tags["evergreen.update_count"] == "1"
    assert v2.tags["gate_passed"] == "true" and float(v2.tags["train_cpu_seconds"]) > 0
    assert _trees(model, upd["version"]) == TREES + 4  # the base trees plus the update's

    back = rollback(model=model, to_version=full["version"], reason="test: back to the full fit")
    assert back["to_version"] == full["version"]
    again = retrain(model=model, reason="schedule", force=True)
    assert again["status"] == "promoted", again["detail"]
    v3 = cl.get_model_version(model, again["version"])
    # Continues the restored v1 (count 1 again), not the rolled-back update v2.
    assert v3.tags["evergreen.base_version"] == full["version"], v3.tags
    assert v3.tags["evergreen.update_count"] == "1" and _trees(model, again["version"]) == TREES + 4

    refit = retrain(model=model, reason="schedule", force=True)  # refit_every 1: v3's count is reached
    assert refit["training_mode"] == "full" and refit["base_version"] is None, refit

    drift = retrain(model=model, reason="drift", force=True)  # refit_on_drift: a full fit (count is 0 here)
    assert drift["training_mode"] == "full" and drift["base_version"] is None, drift
    tags = cl.get_model_version(model, drift["version"]).tags
    assert tags["evergreen.update_count"] == "0" and "evergreen.base_version" not in tags
