"""Active-learning selection (evergreen.active): uncertainty, budget, selection and the random control."""

from __future__ import annotations

import numpy as np
import pytest

from evergreen import active


def test_entropy_and_margin_peak_at_the_boundary() -> None:
    p = np.array([0.5, 0.9, 0.1, 0.6, 1.0])
    h = active.uncertainty(p, "entropy")
    m = active.uncertainty(p, "margin")
    assert h[0] == pytest.approx(1.0) and m[0] == pytest.approx(1.0)
    assert h[4] == pytest.approx(0.0) and m[4] == pytest.approx(0.0)
    assert h[1] == pytest.approx(h[2]) and m[1] == pytest.approx(m[2])  # symmetric around 0.5
    assert h[3] > h[1] and m[3] > m[1]


def test_multiclass_uncertainty() -> None:
    p = np.array([[1 / 3, 1 / 3, 1 / 3], [0.8, 0.1, 0.1], [0.45, 0.45, 0.1]])
    h = active.uncertainty(p, "entropy")
    m = active.uncertainty(p, "margin")
    assert h[0] == pytest.approx(1.0) and h[0] > h[2] > h[1]
    assert m[0] == pytest.approx(1.0) and m[2] == pytest.approx(1.0) and m[1] == pytest.approx(0.3)


def test_select_takes_the_most_uncertain_in_order_and_is_stable() -> None:
    p = np.array([0.99, 0.52, 0.5, 0.7, 0.5, 0.01])
    assert active.select(p, 3, "entropy").tolist() == [2, 4, 1]
    assert active.select(p, 3, "margin").tolist() == [2, 4, 1]
    assert active.select(p, 0).tolist() == []
    assert len(active.select(p, 99)) == 6


def test_random_control_is_seeded_and_without_replacement() -> None:
    p = np.linspace(0, 1, 100)
    a = active.select(p, 10, "random", seed=7)
    assert a.tolist() == active.select(p, 10, "random", seed=7).tolist()
    assert len(set(a.tolist())) == 10
    assert a.tolist() != active.select(p, 10, "random", seed=8).tolist()
    rng = np.random.default_rng(7)  # a replay passes one Generator through all its batches
    assert active.select(p, 10, "random", rng).tolist() == a.tolist()


def test_budget_share_rows_and_period_usage() -> None:
    assert active.budget_rows(336, share=0.1) == 33
    assert active.budget_rows(336, 0.1) == 33
    assert active.budget_rows(336, rows=50) == 50
    assert active.budget_rows(336, rows=50, already_requested=40) == 10
    assert active.budget_rows(336, rows=50, already_requested=60) == 0
    assert active.budget_rows(20, rows=50) == 20
    for bad in ({}, {"share": 0.1, "rows": 5}, {"share": 0.0}, {"share": 1.5}):
        with pytest.raises(ValueError):
            active.budget_rows(10, **bad)  # type: ignore[arg-type]


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown strategy"):
        active.select(np.array([0.5]), 1, "bald")  # type: ignore[arg-type]


def test_request_size_respects_the_share_and_the_period_budget() -> None:
    assert active.request_size(336, 0.1) == 33
    assert active.request_size(336, 0.1, rows_per_period=40, already_requested=33) == 7
    assert active.request_size(336, 0.1, rows_per_period=40, already_requested=45) == 0
    assert active.request_size(336, 25) == 25  # a row count
    assert active.request_size(336, 25, rows_per_period=30, already_requested=10) == 20


def test_requested_in_period_counts_only_the_period() -> None:
    import pandas as pd

    now = pd.Timestamp("2026-12-04T12:00:00+00:00")
    ledger = [
        {"at": "2026-11-20T12:00:00+00:00", "requested": 100},  # two weeks ago: outside 7D
        {"at": "2026-11-30T12:00:00+00:00", "requested": 20},
        {"at": "2026-12-04T11:00:00+00:00", "requested": 13},
    ]
    assert active.requested_in_period(ledger, now, "7D") == 33
    assert active.requested_in_period(ledger, now, "30D") == 133
    assert active.requested_in_period([], now, "7D") == 0
