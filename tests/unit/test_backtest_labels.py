"""Backtest label delay (policy `label_delay`): the synthetic abrupt-drift stream, labels D batches late."""

from __future__ import annotations

import pandas as pd
import pytest

from evergreen.backtest.labels import delay_costs, labelled_end, performance_batch
from evergreen.backtest.replay import prepare
from evergreen.spec import ModelSpec, parse_spec
from tests.support.builders import synthetic_stream
from tests.unit.backtest_synth import (
    DRIFT_AT,
    N_BATCHES,
    ROWS,
    SYNTH_SPEC,
    WARMUP,
    mean_acc,
    retrain_batches,
    run,
)


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return parse_spec(SYNTH_SPEC)


@pytest.fixture(scope="module")
def stream() -> pd.DataFrame:
    return synthetic_stream()


def test_labelled_rows_and_performance_batch(spec, stream):
    replay = prepare(stream, spec, batch_rows=ROWS, warmup=WARMUP)
    assert labelled_end(replay, 5, 0) == replay.bounds[5][1]
    assert labelled_end(replay, 5, 2) == replay.bounds[3][1]
    assert labelled_end(replay, WARMUP, 2) == replay.bounds[WARMUP - 1][1]  # the warm-up is all labelled
    champ_end = replay.bounds[3][1]
    assert performance_batch(replay, 6, 2, champ_end) == 4
    assert performance_batch(replay, 5, 2, champ_end) is None  # batch 3's labels were trained on


def test_a_label_delay_retrains_later_and_costs_accuracy(spec, stream):
    delay = 2
    base = {"trigger": {"performance": {}}, "gate": False}
    report = run(
        spec, stream, {"name": "perf", **base}, {"name": f"perf-late-{delay}", **base, "label_delay": delay}
    )
    now, late = report.policy("perf"), report.policy(f"perf-late-{delay}")
    first_now, first_late = min(retrain_batches(now)), min(retrain_batches(late))
    assert first_now >= DRIFT_AT and first_late >= first_now + delay  # the degradation is seen D batches late
    # after its first retrain the late policy trained only on rows labelled by then: none after first_late - D
    assert mean_acc(late, DRIFT_AT, N_BATCHES) < mean_acc(now, DRIFT_AT, N_BATCHES)
    (cost,) = delay_costs(report.policies)
    assert (cost.policy, cost.baseline, cost.label_delay) == (f"perf-late-{delay}", "perf", delay)
    assert (
        cost.accuracy_cost == pytest.approx(now.mean_accuracy - late.mean_accuracy) and cost.accuracy_cost > 0
    )
    # the JSON form pairs the same way
    assert delay_costs([p.model_dump(mode="json") for p in report.policies])[0].policy == cost.policy
