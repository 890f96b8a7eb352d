"""`gate.slices` on real parts (issue 13 part 5): a challenger that is fine on the whole hold-out but has
unlearned one category is rejected, the gate report names the slice, and the champion stays.

The label is ``x1 > 0``. The newest training days flip it for category ``c == "a"`` only (the hold-out days stay clean), so a
7-day rolling window teaches the challenger the wrong rule for that slice. With a tolerance that the
overall difference stays inside, the same challenger is promoted when `gate.slices` is empty (control run).
Real DVC registry + remote, real GX, real MLflow server, the ingest and retrain flows against a real
Prefect API.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from adapters import mlflow_registry as model_registry
from evergreen.settings import get_settings
from tests.support.builders import write_batch, write_spec
from tests.unit.test_spec_matrix import spec_dict, synth_frame

pytestmark = [pytest.mark.slow, pytest.mark.integration]

DAY = 24


def test_a_regressed_slice_rejects_a_challenger_the_overall_gate_passes(env, tmp_path, monkeypatch):
    from flows.ingest import ingest
    from flows.retrain import retrain

    model = f"slices-{tmp_path.name[-6:].lower().replace('_', '-')}"
    raw = spec_dict("binary", name=model, window={"kind": "rolling", "period": "5D"})
    raw["training"]["holdout"] = {"period": "2D"}
    raw["gate"] |= {"tolerance": 0.6, "slice_min_rows": 10}
    models = tmp_path / "models"
    write_spec(models, raw)
    monkeypatch.setenv("EVERGREEN_MODELS_DIR", str(models))
    frame = synth_frame("binary", weeks=4, seed=3)
    frame["y"] = np.where(frame["x1"] > 0, "yes", "no")  # a rule both models can learn exactly
    first, last = frame.iloc[: 21 * DAY], frame.iloc[21 * DAY :].copy()
    # Days 21-25 of the last week: the label of category "a" is flipped; days 26-27 (the hold-out) are clean.
    poisoned = (last["c"] == "a").to_numpy() & (np.arange(len(last)) < 5 * DAY)
    last.loc[poisoned, "y"] = np.where(last.loc[poisoned, "y"] == "yes", "no", "yes")

    assert ingest(model=model, path=write_batch(first, tmp_path / "w0-2.parquet"))["status"] == "ingested"
    assert retrain(model=model, reason="manual")["status"] == "promoted"
    assert ingest(model=model, path=write_batch(last, tmp_path / "w3.parquet"))["status"] == "ingested"

    sliced = retrain(model=model, reason="manual", force=True, overrides={"gate.slices": ["c", "x1"]})
    decision = sliced["decision"]
    assert sliced["status"] == "rejected" and sliced["champion_version"] == "1", json.dumps(decision)
    # The overall interval stayed inside the tolerance; only the slice rule rejected it.
    assert decision["ci_low"] >= -0.6, decision
    by_slice = {(r["feature"], r["slice"]): r for r in decision["slices"]}
    assert by_slice[("c", "a")]["verdict"] == "regressed", by_slice
    assert {by_slice[("c", s)]["verdict"] for s in ("b", "c")} <= {"ok", "undefined"}
    assert sum(1 for f, _ in by_slice if f == "x1") >= 2  # numeric feature: quantile bins
    assert any(r.startswith("slice c=a ") for r in decision["reasons"]), decision["reasons"]

    cl = model_registry.client(get_settings())
    assert cl.get_model_version_by_alias(model, "champion").version == "1"
    rejected = cl.get_model_version(model, sliced["version"])
    stored = json.loads(rejected.tags["gate_decision"])
    assert stored["passed"] is False and any(s["slice"] == "a" for s in stored["slices"])

    control = retrain(model=model, reason="manual", force=True)
    assert control["status"] == "promoted" and not control["decision"]["slices"], control
