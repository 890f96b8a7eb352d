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
from tests.support.builders import synthetic_stream
from tests.unit.backtest_synth import SYNTH_SPEC, policies

ROWS, N, DRIFT, WARMUP, DELAY = 240, 12, 7, 3, 2


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return parse_spec(SYNTH_SPEC)


@pytest.fixture(scope="module")
def stream() -> pd.DataFrame:
    frame = synthetic_stream(n_batches=N, rows=ROWS, drift_at=None, seed=5)  # times and the categorical
    rng = np.random.default_rng(6)  # not the stream's seed: the label noise must be independent of x
    scale = np.where(np.arange(len(frame)) >= DRIFT * ROWS, 0.2, 1.0)  # after DRIFT: rows near the boundary
    frame["x1"] *= scale
    frame["x2"] *= scale
    noise = rng.normal(0, 0.4, len(frame))
    frame["y"] = (frame["x1"] + 0.5 * frame["x2"] + noise > 0).astype(int)  # the concept never changes
    return frame


def _run(spec: ModelSpec, stream: pd.DataFrame, *items: dict) -> bt.BacktestReport:
    return bt.run_backtest(stream, spec, policies(*items), batch_rows=ROWS, warmup=WARMUP)


def test_the_estimate_fires_at_arrival_labels_only_delay_batches_later(spec, stream):
    perf = {"performance": {"floor": 0.9, "consecutive": 1}, "cooldown": None}
    est = {"estimated": {"metric": "roc_auc", "floor": 0.9}, "cooldown": None}
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
    # a 240-row isotonic calibrator is coarse near the boundary: roughly close (0.02..0.09 over seeds), and it tracks
    assert p.estimate_mae < 0.12 and p.estimate_bias is not None
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
