"""The paired difference from the every-batch baseline and its interval (evergreen.backtest.compare)."""

from __future__ import annotations

import numpy as np
import pytest

from evergreen.backtest.compare import paired_difference


def _coverage(rho: float, n: int = 60, sims: int = 600, seed: int = 0) -> float:
    """Share of intervals that hold the true difference 0, for AR(1) per-batch differences."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(sims):
        e = rng.normal(0, 0.01, n)
        d = np.empty(n)
        d[0] = e[0]
        for i in range(1, n):
            d[i] = rho * d[i - 1] + e[i]
        base = rng.uniform(0.7, 0.9, n)
        r = paired_difference(list(base + d), list(base), score="accuracy")
        assert r is not None and r.low is not None and r.high is not None
        hits += r.low <= 0.0 <= r.high
    return hits / sims


def test_independent_batches_cover_a_zero_difference_about_95_percent_of_the_time():
    assert 0.92 <= _coverage(0.0) <= 0.98


def test_autocorrelated_batches_still_cover_zero_where_a_plain_t_interval_would_not():
    # with rho 0.6, a plain t interval over 60 weeks covers 0 in 65% of these runs (same draws)
    assert _coverage(0.6) >= 0.88


def test_a_real_gap_is_told_apart_and_the_baseline_against_itself_is_exactly_zero():
    rng = np.random.default_rng(1)
    base = list(rng.uniform(0.7, 0.9, 100))
    worse = [b - 0.02 + rng.normal(0, 0.01) for b in base]
    r = paired_difference(worse, base, score="accuracy")
    assert r is not None and r.high is not None and r.high < 0
    assert r.mean == pytest.approx(np.mean(np.array(worse) - np.array(base)))
    same = paired_difference(base, base, score="accuracy")
    assert same is not None and (same.mean, same.low, same.high) == (0.0, 0.0, 0.0)


def test_unscored_batches_are_left_out_and_too_few_give_no_interval():
    r = paired_difference([0.8, None, 0.7, 0.9], [0.7, 0.6, None, 0.8], score="roc_auc")
    assert r is not None and r.batches == 2 and r.mean == pytest.approx(0.1)
    assert r.low is None and r.high is None
    assert paired_difference([None], [0.5], score="accuracy") is None
