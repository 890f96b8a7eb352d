"""The label-free estimate in the backtest (evergreen.backtest.estimates): MAE per batch, early firing.

A synthetic stream whose inputs move towards the decision boundary at batch DRIFT (covariate shift,
same concept): the champion's accuracy really drops, and its calibrated scores say so at arrival,
while labels arrive DELAY batches later.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evergreen import backtest as bt
from evergreen.backtest.estimates import text_lines
from evergreen.spec import ModelSpec, parse_spec
from tests.unit.backtest_synth import SYNTH_SPEC, policies

ROWS, N, DRIFT, WARMUP, DELAY = 240, 12, 7, 3, 2


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return parse_spec(SYNTH_SPEC)


@pytest.fixture(scope="module")
def stream() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = N * ROWS
    scale = np.where(np.arange(n) >= DRIFT * ROWS, 0.2, 1.0)  # after DRIFT: rows near the boundary
    x1, x2 = rng.normal(0, 1, n) * scale, rng.normal(0, 1, n) * scale
    y = (x1 + 0.5 * x2 + rng.normal(0, 0.4, n) > 0).astype(int)  # the concept never changes
    return pd.DataFrame(
        {
            "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n), unit="h"),
            "x1": x1,
            "x2": x2,
            "c": rng.integers(0, 3, n),
            "y": y,
        }
    )


def _run(spec: ModelSpec, stream: pd.DataFrame, *items: dict) -> bt.BacktestReport:
    return bt.run_backtest(stream, spec, policies(*items), batch_rows=ROWS, warmup=WARMUP)


def test_the_estimate_fires_at_arrival_labels_only_delay_batches_later(spec, stream):
    perf = {"performance": {"floor": 0.8, "consecutive": 1}, "cooldown": None}
    est = {"estimated": {"metric": "roc_auc", "floor": 0.8}, "cooldown": None}
    report = _run(
        spec,
        stream,
        {"name": "performance", "trigger": perf, "label_delay": DELAY, "gate": False},
        {"name": "estimated", "trigger": {**perf, **est}, "label_delay": DELAY, "gate": False},
    )
    p, e = report.policy("performance"), report.policy("estimated")
    first = next(b.batch for b in p.batches if b.retrain and b.batch >= DRIFT)
    assert first == DRIFT + DELAY  # the labels of batch DRIFT are in at DRIFT + DELAY
    drift_batch = next(b for b in e.batches if b.batch == DRIFT)
    assert drift_batch.retrain and drift_batch.reason == "estimated" and drift_batch.estimate_fired
    assert drift_batch.estimate_realised is not None and drift_batch.estimate_realised < 0.8  # a real drop
    assert DRIFT in e.estimate_early and e.estimate_metric == "roc_auc"
    (line,) = text_lines([x.model_dump(mode="json") for x in report.policies])  # the CLI's line
    assert (
        line.startswith("estimate (roc_auc): estimated MAE ")
        and f"early (labels not in yet) at [{DRIFT}" in line
    )
    assert p.estimate_batches == 0 and p.estimate_mae is None and p.batches[0].estimate is None
    assert "Label-free estimate" in bt.to_markdown(report) and "| estimated | roc_auc |" in bt.to_markdown(
        report
    )


def test_mean_absolute_error_against_the_realised_metric(spec, stream):
    """floor 0: the estimate is recorded on every batch but can never fire (an observer)."""
    observe = {"schedule": {"every": 4}, "estimated": {"metric": "accuracy", "floor": 0.0}, "cooldown": None}
    (p,) = _run(spec, stream, {"name": "observe", "trigger": observe, "gate": False}).policies
    assert p.estimate_batches == N - WARMUP and not p.estimate_fired
    errors = [abs(b.estimate - b.estimate_realised) for b in p.batches]
    assert p.estimate_mae == pytest.approx(np.mean(errors))
    # a 240-row isotonic calibrator is coarse near the boundary: close, somewhat optimistic, and it tracks
    assert p.estimate_mae < 0.08 and p.estimate_bias is not None and p.estimate_bias >= 0
    before = np.mean([b.estimate for b in p.batches if b.batch < DRIFT])
    after = np.mean([b.estimate for b in p.batches if b.batch >= DRIFT])
    assert before - after > 0.1
    assert all(b.estimate_low <= b.estimate <= b.estimate_high for b in p.batches)


def test_an_estimate_the_model_cannot_have_is_a_policy_error(spec):
    reg = dict(SYNTH_SPEC, task="regression", metric="rmse")
    reg["data"] = {k: v for k, v in SYNTH_SPEC["data"].items() if k != "positive_label"}
    reg["gate"] = {**SYNTH_SPEC["gate"], "floor": None}
    pol = policies({"name": "e", "trigger": {"estimated": {"floor": 0.7}}})[0]
    with pytest.raises(bt.PolicyError, match="trigger.estimated.*regression"):
        bt.resolve_policy(pol, parse_spec(reg))
    with pytest.raises(bt.PolicyError, match="floor.*max_drop"):
        bt.resolve_policy(policies({"name": "e", "trigger": {"estimated": {"metric": "accuracy"}}})[0], spec)
