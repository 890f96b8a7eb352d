"""A synthetic stream with a known abrupt drift, its spec, and small helpers shared by the backtest tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from evergreen import backtest as bt
from evergreen.spec import ModelSpec

ROOT = Path(__file__).resolve().parents[2]
ROWS = 240  # rows per batch (10 days of hourly rows)
DRIFT_AT = 8  # first batch after the abrupt drift
N_BATCHES = 14
WARMUP = 3

SYNTH_SPEC: dict = {
    "name": "synth",
    "data": {"path": "synth", "target": "y", "time_column": "ts", "positive_label": 1},
    "features": [
        {"name": "x1", "type": "numeric"},
        {"name": "x2", "type": "numeric"},
        {"name": "c", "type": "categorical", "categories": [0, 1, 2]},
    ],
    "metric": "roc_auc",
    "training": {
        "window": {"kind": "rolling", "rows": 2 * ROWS},
        "holdout": {"period": None, "rows": ROWS},
        "estimator": {"params": {"n_estimators": 25, "num_leaves": 7, "min_child_samples": 10}},
        "min_train_rows": 100,
    },
    "gate": {"floor": 0.6, "tolerance": 0.02, "n_bootstrap": 200},
    "triggers": {
        "drift": {"statistic": "psi", "threshold": 0.2, "share": 0.5, "bins": 20},
        "performance": {"floor": 0.8, "consecutive": 1},
        "volume": {"min_new_share": 0.5},
        "cooldown": None,
    },
}


def synthetic_stream(
    n_batches: int = N_BATCHES, rows: int = ROWS, drift_at: int | None = DRIFT_AT, seed: int = 0
) -> pd.DataFrame:
    """Hourly rows; from batch `drift_at` on, both numeric features shift by 2.5 sd AND the concept flips."""
    rng = np.random.default_rng(seed)
    n = n_batches * rows
    x1 = rng.normal(0.0, 1.0, n)
    x2 = rng.normal(0.0, 1.0, n)
    after = np.zeros(n, dtype=bool) if drift_at is None else np.arange(n) >= drift_at * rows
    x1[after] += 2.5
    x2[after] += 2.5
    s = x1 + 0.5 * x2 + rng.normal(0.0, 0.3, n)
    y = np.where(after, s < 3.75, s > 0).astype(int)
    return pd.DataFrame(
        {
            "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n), unit="h"),
            "x1": x1,
            "x2": x2,
            "c": rng.integers(0, 3, n),
            "y": y,
        }
    )


def policies(*items: dict) -> list[bt.Policy]:
    return bt.parse_policies(list(items)).policies


def run(spec: ModelSpec, frame: pd.DataFrame, *items: dict, **kw) -> bt.BacktestReport:
    kw.setdefault("batch_rows", ROWS)
    kw.setdefault("warmup", WARMUP)
    return bt.run_backtest(frame, spec, policies(*items), **kw)


def retrain_batches(p: bt.PolicyResult) -> list[int]:
    return [b.batch for b in p.batches if b.retrain]


def mean_acc(p: bt.PolicyResult, lo: int, hi: int) -> float:
    return float(np.mean([b.accuracy for b in p.batches if lo <= b.batch < hi]))
