"""Policy backtest: ranking, the Pareto front and the report tables."""

from __future__ import annotations

import pandas as pd
import pytest

from evergreen import backtest as bt
from evergreen.spec import ModelSpec, parse_spec
from tests.support.builders import synthetic_stream
from tests.unit.backtest_synth import N_BATCHES, ROWS, SYNTH_SPEC, WARMUP, run


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return parse_spec(SYNTH_SPEC)


@pytest.fixture(scope="module")
def stream() -> pd.DataFrame:
    return synthetic_stream()


# ---- report ----


def _result(name: str, acc: float, auc: float, retrains: int) -> bt.PolicyResult:
    return bt.PolicyResult(
        name=name,
        trigger="t",
        window="all",
        gated=False,
        config={},
        metric="roc_auc",
        batches=[],
        mean_accuracy=acc,
        mean_metric=auc,
        retrains=retrains,
        promotions=retrains,
        train_seconds=float(retrains),
    )


def test_rank_and_pareto_front(spec, stream):
    replay = bt.prepare(stream, spec, batch_rows=ROWS, warmup=WARMUP)
    results = [
        _result("never", 0.60, 0.65, 0),
        _result("weekly", 0.78, 0.88, 100),
        _result("monthly", 0.76, 0.87, 25),
        _result("wasteful", 0.75, 0.86, 60),  # dominated by monthly
        _result("tie", 0.76, 0.87, 30),  # dominated by monthly (same metric, more retrains)
    ]
    report = bt.summarize(replay, results)
    assert [p.name for p in sorted(report.policies, key=lambda p: p.rank or 0)] == [
        "weekly",
        "monthly",
        "tie",
        "wasteful",
        "never",
    ]
    assert report.pareto_front == ["never", "monthly", "weekly"]
    assert report.best == "weekly"
    by_acc = bt.summarize(replay, [*results, _result("auc-king", 0.70, 0.95, 10)], rank_by="accuracy")
    assert (
        by_acc.best == "weekly"
        and bt.summarize(replay, [*results, _result("auc-king", 0.70, 0.95, 10)]).best == "auc-king"
    )
    with pytest.raises(ValueError, match="rank_by"):
        bt.summarize(replay, results, rank_by="logloss")
    rows = bt.summary_rows(report)
    assert [r["policy"] for r in rows][:2] == ["weekly", "monthly"] and "mean_roc_auc" in rows[0]
    md = bt.to_markdown(report)
    assert "| 1 | **weekly** |" in md and "Pareto front" in md


def test_per_batch_rows_carry_every_policy_and_batch(spec, stream):
    report = run(
        spec, stream, {"name": "never"}, {"name": "e4", "trigger": {"schedule": {"every": 4}}, "gate": False}
    )
    rows = bt.per_batch_rows(report)
    assert len(rows) == 2 * (N_BATCHES - WARMUP)
    assert {"policy", "batch", "accuracy", "roc_auc", "retrain", "promoted", "reason"} <= set(rows[0])
