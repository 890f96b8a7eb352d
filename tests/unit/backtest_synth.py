"""The synthetic abrupt-drift stream (tests/support/builders.py) as the backtest tests use it, and small helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from evergreen import backtest as bt
from evergreen.spec import ModelSpec
from tests.support.builders import SYNTH_BATCHES, SYNTH_DRIFT_AT, SYNTH_ROWS, synthetic_spec_dict

ROOT = Path(__file__).resolve().parents[2]
ROWS = SYNTH_ROWS  # rows per batch (10 days of hourly rows)
DRIFT_AT = SYNTH_DRIFT_AT  # first batch after the abrupt drift
N_BATCHES = SYNTH_BATCHES
WARMUP = 3

SYNTH_SPEC: dict = synthetic_spec_dict()


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
