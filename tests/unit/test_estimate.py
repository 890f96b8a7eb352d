"""CBPE (evergreen.estimate): calibrated scores estimate accuracy and ROC AUC without labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from evergreen.estimate import Calibrator, estimate, expected_roc_auc, fit_calibrator
from evergreen.metrics import metric_value
from evergreen.spec import SpecError, parse_spec
from tests.support.builders import elec2_spec_dict, synthetic_spec_dict


def _draw(
    rng: np.random.Generator, n: int, shift: float = 0.0, scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x ~ N(shift, scale); true P(y=1|x) logistic in x; the model's scores monotone in x but miscalibrated."""
    x = rng.normal(shift, scale, n)
    p = 1 / (1 + np.exp(-2 * x))
    y = (rng.random(n) < p).astype(int)
    scores = 1 / (1 + np.exp(-1.2 * x + 0.3))
    return y, scores, p


IDENTITY = Calibrator(task="binary", x=[[0.0, 1.0]], y=[[0.0, 1.0]], rows=0)


def test_the_stored_calibrator_maps_scores_as_sklearns_isotonic_regression_does():
    rng = np.random.default_rng(0)
    y, s, _ = _draw(rng, 3000)
    cal = fit_calibrator("binary", y, s)
    again = Calibrator.model_validate(json.loads(cal.model_dump_json()))  # what the version stores
    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(s, y)
    probe = np.r_[rng.random(500), -1.0, 2.0]  # out of range: clipped like sklearn
    np.testing.assert_allclose(again.probabilities(probe), iso.predict(probe), atol=1e-12)
    assert cal.rows == 3000 and set(cal.reference) == {"accuracy", "roc_auc"}


@pytest.mark.parametrize("metric", ["accuracy", "roc_auc"])
def test_estimate_tracks_the_realised_metric_under_covariate_shift(metric):
    """Calibrated on a hold-out, then batches with shifted inputs: the estimate follows the realised metric."""
    rng = np.random.default_rng(1)
    y, s, _ = _draw(rng, 5000)
    cal = fit_calibrator("binary", y, s)
    errors, realised = [], []
    for k in range(60):
        yb, sb, _ = _draw(rng, 500, shift=rng.normal(0, 0.8), scale=rng.uniform(0.3, 1.5))
        est = estimate(cal, sb, metric, n_sim=300, seed=k)
        assert est.value is not None
        realised.append(metric_value(metric, yb, sb))
        errors.append(est.value - realised[-1])
    assert np.std(realised) > 0.02  # the shifts really move the metric
    assert np.mean(np.abs(errors)) < 0.02
    assert abs(np.mean(errors)) < 0.01


@pytest.mark.parametrize("metric", ["accuracy", "roc_auc"])
def test_the_interval_covers_the_realised_metric_at_about_its_stated_rate(metric):
    """With calibrated scores the two-sided 1 - 2 alpha interval (90% at alpha 0.05) covers ~90% of batches."""
    rng = np.random.default_rng(2)
    trials, covered = 300, 0
    for k in range(trials):
        _, _, p = _draw(rng, 400, shift=rng.normal(0, 0.7))
        yb = (rng.random(len(p)) < p).astype(int)
        est = estimate(IDENTITY, p, metric, alpha=0.05, n_sim=400, seed=k)
        assert est.confidence == pytest.approx(0.9)
        covered += est.low <= metric_value(metric, yb, p) <= est.high
    assert 0.84 <= covered / trials <= 0.96, covered / trials


def test_scores_moving_towards_the_boundary_lower_the_estimate_and_its_upper_bound():
    rng = np.random.default_rng(3)
    y, s, _ = _draw(rng, 4000)
    cal = fit_calibrator("binary", y, s)
    _, confident, _ = _draw(rng, 400)
    yu, uncertain, _ = _draw(rng, 400, scale=0.1)  # inputs where the true P(y=1) is about 0.5
    good, bad = estimate(cal, confident, "accuracy"), estimate(cal, uncertain, "accuracy")
    assert good.value is not None and bad.value is not None and bad.high is not None
    assert bad.value < 0.65 < good.value
    assert bad.high < 0.7 and bad.low is not None and bad.low < bad.value < bad.high
    assert metric_value("accuracy", yu, uncertain) < 0.65  # and the realised accuracy really dropped


def test_expected_auc_matches_sklearn_when_the_expected_labels_are_certain():
    s = np.array([0.1, 0.4, 0.35, 0.8, 0.8, 0.2])
    y = np.array([0, 0, 1, 1, 0, 1])
    assert expected_roc_auc(s, y.astype(float)) == pytest.approx(metric_value("roc_auc", y, s))


def test_multiclass_accuracy_estimate():
    rng = np.random.default_rng(4)
    logits = rng.normal(0, 1.5, (4000, 3))
    true = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in true])
    scores = np.exp(logits * 0.6) / np.exp(logits * 0.6).sum(axis=1, keepdims=True)  # under-confident
    cal = fit_calibrator("multiclass", y[:2000], scores[:2000])
    est = estimate(cal, scores[2000:], "accuracy")
    assert est.value == pytest.approx(metric_value("accuracy", y[2000:], scores[2000:]), abs=0.03)
    with pytest.raises(ValueError, match="roc_auc"):
        estimate(cal, scores[2000:], "roc_auc")


def test_undefined_cases_are_none_not_errors():
    assert estimate(IDENTITY, np.empty(0), "accuracy").value is None
    one_class = estimate(IDENTITY, np.zeros(50), "roc_auc")  # every row calibrated to P(positive) = 0
    assert one_class.value is None and one_class.high is None
    with pytest.raises(ValueError, match="regression"):
        fit_calibrator("regression", np.zeros(3), np.zeros(3))


def test_spec_refuses_an_estimate_it_cannot_compute():
    raw = elec2_spec_dict()
    raw["triggers"]["estimated"] = {"enabled": True}
    with pytest.raises(SpecError, match="triggers.estimated.*floor.*max_drop"):
        parse_spec(raw)
    raw["triggers"]["estimated"] = {"enabled": True, "floor": 1.5}
    with pytest.raises(SpecError, match="triggers.estimated.floor"):
        parse_spec(raw)
    raw["triggers"]["estimated"] = {"enabled": True, "metric": "roc_auc", "floor": 0.7}
    assert parse_spec(raw).triggers.estimated.enabled
    reg = synthetic_spec_dict()
    reg["task"], reg["metric"] = "regression", "rmse"
    reg["triggers"] = {**reg.get("triggers", {}), "estimated": {"enabled": True, "floor": 0.7}}
    reg["data"] = {k: v for k, v in reg["data"].items() if k not in ("positive_label", "labels")}
    with pytest.raises(SpecError, match="not regression"):
        parse_spec(reg)
