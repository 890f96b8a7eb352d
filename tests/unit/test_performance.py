"""Performance decay on labelled batches: intervals, significance and the K-consecutive rule."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from evergreen.metrics import metric_value
from evergreen.performance import (
    PerformanceReport,
    consecutive_degraded,
    evaluate_trigger,
    measure_performance,
    wilson_interval,
)
from evergreen.spec import PerformanceTrigger


def _batch(rng: np.random.Generator, n: int, separation: float) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 2, n)
    logits = separation * (2 * y - 1) + rng.normal(size=n)
    return y, 1 / (1 + np.exp(-logits))


@pytest.mark.parametrize("k,n", [(0, 10), (7, 10), (80, 100), (950, 1000), (1000, 1000)])
def test_wilson_matches_scipy(k: int, n: int) -> None:
    ci = binomtest(k, n).proportion_ci(confidence_level=0.9, method="wilson")
    assert wilson_interval(k, n, 0.9) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_wilson_coverage() -> None:
    rng = np.random.default_rng(0)
    p, n = 0.8, 120
    hits = [lo <= p <= hi for lo, hi in (wilson_interval(int(k), n, 0.95) for k in rng.binomial(n, p, 2000))]
    assert 0.93 <= np.mean(hits) <= 0.97


def test_accuracy_report_uses_wilson() -> None:
    rng = np.random.default_rng(1)
    y, s = _batch(rng, 400, 1.0)
    r = measure_performance("accuracy", y, s, reference=0.9, floor=0.5, alpha=0.05)
    assert r.method == "wilson" and r.confidence == pytest.approx(0.9)
    assert r.value == pytest.approx(metric_value("accuracy", y, s))
    assert r.ci_low is not None and r.ci_high is not None and r.ci_low < r.value < r.ci_high
    assert r.difference == pytest.approx(r.value - 0.9)  # type: ignore[operator]
    assert r.drop == pytest.approx(0.9 - r.value)  # type: ignore[operator]
    assert not r.below_floor


def test_bootstrap_auc_interval_is_sane_and_deterministic() -> None:
    rng = np.random.default_rng(2)
    y, s = _batch(rng, 500, 1.0)
    a = measure_performance("roc_auc", y, s, reference=0.8, floor=None, n_resamples=400, seed=3)
    b = measure_performance("roc_auc", y, s, reference=0.8, floor=None, n_resamples=400, seed=3)
    assert a == b
    assert a.method == "bootstrap" and a.n_resamples == 400
    assert a.ci_low < a.value < a.ci_high  # type: ignore[operator]
    y2, s2 = _batch(rng, 5000, 1.0)
    big = measure_performance("roc_auc", y2, s2, reference=0.8, floor=None, n_resamples=400)
    assert (big.ci_high - big.ci_low) < 0.5 * (a.ci_high - a.ci_low)  # type: ignore[operator]
    # the true AUC of this model (about 0.92) lies within the large batch's interval
    assert big.ci_low < 0.921 < big.ci_high  # type: ignore[operator]


def test_below_floor_only_when_significant() -> None:
    rng = np.random.default_rng(4)
    # a model whose true accuracy is about 0.76, floor 0.8
    small_hits = big_hits = 0
    for _ in range(20):
        y, s = _batch(rng, 40, 0.5)
        small_hits += measure_performance("accuracy", y, s, reference=0.85, floor=0.8).below_floor
        y, s = _batch(rng, 4000, 0.5)
        big_hits += measure_performance("accuracy", y, s, reference=0.85, floor=0.8).below_floor
    assert big_hits == 20
    assert small_hits <= 10


def test_good_model_is_rarely_called_below_floor() -> None:
    """Type I error of `below_floor` at the floor itself stays near alpha."""
    rng = np.random.default_rng(5)
    p = 0.8
    alarms = 0
    trials = 400
    for _ in range(trials):
        y = np.ones(200, dtype=int)
        s = np.where(rng.uniform(size=200) < p, 0.9, 0.1)  # correct with probability 0.8
        alarms += measure_performance("accuracy", y, s, reference=p, floor=p, alpha=0.05).below_floor
    assert alarms / trials < 0.08


def test_logloss_is_oriented() -> None:
    rng = np.random.default_rng(6)
    y, s = _batch(rng, 2000, 0.2)
    r = measure_performance("logloss", y, s, reference=0.3, floor=0.4, n_resamples=300)
    assert r.value is not None and r.value > 0.6
    assert r.below_floor  # worse than the floor: the lower bound of the loss is above it
    assert r.drop == pytest.approx(r.value - 0.3)
    good = measure_performance("logloss", y, s, reference=0.3, floor=5.0, n_resamples=300)
    assert not good.below_floor


def test_undefined_auc_is_not_degraded() -> None:
    y = np.ones(50, dtype=int)
    r = measure_performance("roc_auc", y, np.linspace(0, 1, 50), reference=0.8, floor=0.7, n_resamples=200)
    assert r.value is None and not r.below_floor and r.n_resamples == 0


def test_measure_performance_validates() -> None:
    with pytest.raises(ValueError):
        measure_performance("f1", np.zeros(3), np.zeros(3), reference=None, floor=None)
    with pytest.raises(ValueError):
        measure_performance("accuracy", np.zeros(3), np.zeros(4), reference=None, floor=None)


def test_consecutive_degraded() -> None:
    assert consecutive_degraded([True, True], 2)
    assert consecutive_degraded([False, True, True, True], 3)
    assert not consecutive_degraded([True, False, True], 2)
    assert not consecutive_degraded([True], 2)
    assert not consecutive_degraded([], 1)
    with pytest.raises(ValueError):
        consecutive_degraded([True], 0)


def _report(
    value: float, low: float, high: float, *, below: bool, reference: float = 0.85
) -> PerformanceReport:
    return PerformanceReport(
        metric="accuracy",
        value=value,
        reference=reference,
        difference=value - reference,
        drop=reference - value,
        ci_low=low,
        ci_high=high,
        confidence=0.9,
        method="wilson",
        floor=0.8,
        below_floor=below,
        n=300,
        n_positive=150,
        alpha=0.05,
        higher_is_better=True,
    )


def test_trigger_needs_k_consecutive_batches() -> None:
    bad = _report(0.7, 0.65, 0.75, below=True)
    ok = _report(0.84, 0.8, 0.88, below=False)
    trig = PerformanceTrigger(consecutive=2)
    assert not evaluate_trigger([ok, bad], trig).degraded
    d = evaluate_trigger([ok, bad, bad], trig)
    assert d.degraded and d.consecutive == 2 and d.batches == [False, True, True]
    assert not evaluate_trigger([bad, bad, ok], trig).degraded
    assert not evaluate_trigger([bad, bad], PerformanceTrigger(consecutive=2, enabled=False)).degraded
    assert not evaluate_trigger([], trig).degraded


def test_trigger_max_drop_vs_reference() -> None:
    # above the floor, but significantly more than 0.05 below the champion's 0.95
    r = _report(0.85, 0.82, 0.88, below=False, reference=0.95)
    assert evaluate_trigger([r], PerformanceTrigger(consecutive=1, max_drop=0.05)).degraded
    assert not evaluate_trigger([r], PerformanceTrigger(consecutive=1, max_drop=0.1)).degraded
    assert not evaluate_trigger([r], PerformanceTrigger(consecutive=1)).degraded


def test_prior_run_folds_to_the_whole_history() -> None:
    """Production passes one batch and the stored run; the backtester the whole history: same verdicts."""
    bad = _report(0.7, 0.65, 0.75, below=True)
    ok = _report(0.84, 0.8, 0.88, below=False)
    trig = PerformanceTrigger(consecutive=3)
    history = [bad, ok, bad, bad, bad, bad, ok, bad]
    run = 0
    for i, report in enumerate(history):
        step = evaluate_trigger([report], trig, prior=run)
        whole = evaluate_trigger(history[: i + 1], trig)
        assert (step.degraded, step.consecutive) == (whole.degraded, whole.consecutive)
        run = step.consecutive
    carried = evaluate_trigger([], trig, prior=3)  # the same batch measured again: nothing new counted
    assert carried.degraded and carried.consecutive == 3
    with pytest.raises(ValueError):
        evaluate_trigger([bad], trig, prior=-1)
