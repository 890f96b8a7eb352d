"""Drift explained by the champion's feature importance: ranking by impact and the weighted share rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evergreen import training
from evergreen.drift import build_profile, measure_drift
from evergreen.drift.impact import feature_importance, rank_impact, weighted_share
from evergreen.spec import DriftTrigger, parse_spec
from tests.support.builders import synthetic_spec_dict, synthetic_stream

IMPORTANCE = {"x1": 0.7, "x2": 0.3, "c": 0.0}  # the model ignores c


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    ref = synthetic_stream(n_batches=10, drift_at=None, seed=1)
    batch = synthetic_stream(n_batches=1, drift_at=None, seed=2)
    batch["c"] = 2  # drift in the ignored feature only: every row in one category
    return ref, batch


def _profile(ref: pd.DataFrame, importance: dict[str, float] | None):
    return build_profile(ref, ["x1", "x2"], ["c"], bins=20, importance=importance)


def test_drift_only_in_an_ignored_feature_costs_no_retrain_under_importance_weighting(frames) -> None:
    ref, batch = frames
    profile = _profile(ref, IMPORTANCE)
    counted = measure_drift(profile, batch, DriftTrigger(share=0.3))
    weighted = measure_drift(profile, batch, DriftTrigger(share=0.3, weighting="importance"))
    assert counted.drifted_features == weighted.drifted_features == ["c"]
    assert counted.dataset_drift is True  # 1/3 features >= 0.3
    assert weighted.dataset_drift is False and weighted.weighted_share == 0.0
    assert "importance-weighted share 0.00" in weighted.summary
    # the same drift in an important feature is a retrain under both rules
    shifted = batch.assign(c=ref["c"].iloc[: len(batch)].to_numpy(), x1=batch["x1"] + 2.0)
    both = measure_drift(profile, shifted, DriftTrigger(share=0.3, weighting="importance"))
    assert both.dataset_drift is True and both.weighted_share == pytest.approx(0.7)


def test_report_ranks_features_by_importance_times_effect(frames) -> None:
    ref, batch = frames
    shifted = batch.assign(x2=batch["x2"] + 1.0)
    r = measure_drift(_profile(ref, IMPORTANCE), shifted, DriftTrigger())
    ranked = [i.name for i in r.impact]
    assert ranked[0] == "x2" and ranked[-1] == "c"  # c drifted most but the model ignores it
    top = r.impact[0]
    assert top.impact == pytest.approx(0.3 * r.features["x2"].psi, rel=1e-5) and top.drifted
    rows = {row["name"]: row for row in r.to_rows()}
    assert rows["x2"]["importance"] == 0.3 and rows["c"]["impact"] == 0.0


def test_importance_weighting_without_stored_importance_counts_features(frames) -> None:
    ref, batch = frames
    r = measure_drift(_profile(ref, None), batch, DriftTrigger(share=0.3, weighting="importance"))
    assert r.dataset_drift is True and r.weighted_share is None and r.impact == []
    assert any("stores no feature importance" in reason for reason in r.reasons)


def test_chi2_impact_uses_the_psi_effect_size(frames) -> None:
    ref, batch = frames
    r = measure_drift(
        _profile(ref, {"x1": 0.5, "x2": 0.5}), batch, DriftTrigger(statistic="chi2", threshold=0.01)
    )
    x1 = next(i for i in r.impact if i.name == "x1")
    assert x1.effect == r.features["x1"].psi


def test_weighted_share_renormalises_over_measured_features() -> None:
    assert weighted_share(["a"], ["a", "b"], {"a": 0.2, "b": 0.2, "c": 0.6}) == pytest.approx(0.5)
    assert weighted_share(["a"], ["a"], {}) == 0.0
    assert rank_impact({}, IMPORTANCE) == []


def test_lightgbm_gain_importance_of_a_fitted_pipeline() -> None:
    spec = parse_spec(synthetic_spec_dict())
    train = synthetic_stream(n_batches=4, drift_at=None, seed=3)
    pipe, _ = training.fit(spec, train)
    imp = feature_importance(pipe, spec.feature_names)
    assert set(imp) == set(spec.feature_names) and sum(imp.values()) == pytest.approx(1.0, abs=1e-5)
    assert imp["x1"] > imp["x2"] > imp["c"]  # y ~ x1 + 0.5 x2; c is noise
    booster = pipe.named_steps["model"].booster_
    gain = dict(zip(booster.feature_name(), booster.feature_importance("gain"), strict=True))
    assert imp["x1"] == pytest.approx(gain["x1"] / sum(gain.values()), abs=1e-5)


def test_one_hot_importance_is_summed_back_to_its_feature() -> None:
    raw = synthetic_spec_dict()
    raw["training"]["estimator"] = {
        "kind": "sklearn",
        "class_path": "sklearn.ensemble.RandomForestClassifier",
        "params": {"n_estimators": 20, "max_depth": 4},
    }
    spec = parse_spec(raw)
    pipe, _ = training.fit(spec, synthetic_stream(n_batches=4, drift_at=None, seed=3))
    imp = feature_importance(pipe, spec.feature_names)
    assert set(imp) == {"x1", "x2", "c"} and sum(imp.values()) == pytest.approx(1.0, abs=1e-5)
    no_importance = parse_spec({**raw, "training": {**raw["training"], "estimator": {
        "kind": "sklearn", "class_path": "sklearn.linear_model.LogisticRegression", "params": {}}}})  # fmt: skip
    lr, _ = training.fit(no_importance, synthetic_stream(n_batches=4, drift_at=None, seed=3))
    assert feature_importance(lr, spec.feature_names) == {}
    assert np.isfinite(list(imp.values())).all()
