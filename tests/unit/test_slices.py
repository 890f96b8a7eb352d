"""evergreen.slices: per-slice regression check of the gate."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evergreen.slices import NUMERIC_BINS, slice_reasons, slice_table


def _data() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 800
    frame = pd.DataFrame({"city": np.where(np.arange(n) < 400, "a", "b"), "x": rng.normal(size=n)})
    y = rng.integers(0, 2, size=n)
    good = np.clip(y * 0.6 + rng.uniform(0, 0.4, size=n), 0, 1)
    return frame, y, good


def test_regressed_category_is_named() -> None:
    frame, y, good = _data()
    bad = good.copy()
    in_b = frame["city"].to_numpy() == "b"
    bad[in_b] = np.random.default_rng(1).uniform(size=int(in_b.sum()))  # challenger is noise on city=b
    rows = slice_table(frame, ["city"], y, bad, good, metric="roc_auc", tolerance=0.01, min_rows=50)
    verdicts = {r.slice: r.verdict for r in rows}
    assert verdicts == {"a": "ok", "b": "regressed"}
    reasons = slice_reasons(rows, 0.01)
    assert len(reasons) == 1 and "city=b" in reasons[0]


def test_small_and_undefined_slices_are_not_judged() -> None:
    frame, y, good = _data()
    y = y.copy()
    y[frame["city"].to_numpy() == "a"] = 1  # one class only: roc_auc undefined
    rows = slice_table(frame, ["city"], y, good, good, metric="roc_auc", tolerance=0.0, min_rows=50)
    assert {r.slice: r.verdict for r in rows} == {"a": "undefined", "b": "ok"}
    rows = slice_table(frame, ["city"], y, good, good, metric="roc_auc", tolerance=0.0, min_rows=1000)
    assert {r.verdict for r in rows} == {"too_small"}


def test_numeric_feature_uses_quantile_bins() -> None:
    frame, y, good = _data()
    rows = slice_table(frame, ["x"], y, good, good, metric="roc_auc", tolerance=0.0, min_rows=10)
    assert len(rows) == NUMERIC_BINS
    assert sum(r.rows for r in rows) == len(frame)
    assert all(r.verdict == "ok" for r in rows)


def test_with_slices_rejects_a_passed_decision_naming_the_slice() -> None:
    from evergreen.gate import GateDecision
    from evergreen.slices import with_slices

    frame, y, good = _data()
    bad = good.copy()
    in_b = frame["city"].to_numpy() == "b"
    bad[in_b] = np.random.default_rng(1).uniform(size=int(in_b.sum()))
    rows = slice_table(frame, ["city"], y, bad, good, metric="roc_auc", tolerance=0.01, min_rows=50)
    base = GateDecision(
        passed=True,
        reasons=[],
        metric="roc_auc",
        challenger=0.8,
        champion=0.8,
        champion_version="1",
        floor=None,
        diff_mean=0.0,
        ci_low=0.0,
        ci_high=0.0,
        confidence=0.95,
        tolerance=0.01,
        require_superiority=False,
        latency_p95_ms=None,
        latency_budget_ms=None,
        n_holdout=800,
        n_resamples=10,
    )
    out = with_slices(base, rows, 0.01)
    assert not out.passed
    assert any("city=b" in r for r in out.reasons)
    assert len(out.slices) == 2 and base.slices == []
