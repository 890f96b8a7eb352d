"""Policy backtest: the replay engine on a synthetic stream with a known abrupt drift, and on Elec2."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evergreen import backtest as bt
from evergreen import training
from evergreen.spec import ModelSpec, parse_spec
from tests.support.builders import synthetic_stream
from tests.unit.backtest_synth import (
    DRIFT_AT,
    N_BATCHES,
    ROWS,
    SYNTH_SPEC,
    WARMUP,
    mean_acc,
    policies,
    retrain_batches,
    run,
)


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return parse_spec(SYNTH_SPEC)


@pytest.fixture(scope="module")
def stream() -> pd.DataFrame:
    return synthetic_stream()


# ---- the abrupt-drift stream ----


def test_drift_policy_retrains_within_two_batches_of_the_drift_and_never_before(spec, stream):
    report = run(
        spec,
        stream,
        {"name": "never", "trigger": "never", "gate": False},
        {"name": "drift", "trigger": {"drift": {}}, "gate": False},
        drifts=[DRIFT_AT],
    )
    drift, never = report.policy("drift"), report.policy("never")
    fired = retrain_batches(drift)
    assert fired, "the drift policy never retrained"
    assert min(fired) >= DRIFT_AT, f"retrained before the drift at batch {DRIFT_AT}: {fired}"
    assert min(fired) <= DRIFT_AT + 2, f"first retrain {min(fired)} is more than 2 batches after {DRIFT_AT}"
    assert drift.detection_delays == [min(fired) - DRIFT_AT]
    assert all(b.reason == "drift" for b in drift.batches if b.retrain)
    # "never" is fine before the drift and degrades after it; the drift policy recovers.
    assert mean_acc(never, WARMUP, DRIFT_AT) > 0.85
    assert mean_acc(never, DRIFT_AT, N_BATCHES) < 0.6
    assert mean_acc(drift, DRIFT_AT + 3, N_BATCHES) > 0.85
    assert never.retrains == 0 and never.detection_delays == [None]
    assert drift.rank == 1 and report.best == "drift"


def test_performance_policy_retrains_after_the_drop_with_the_gate(spec, stream):
    report = run(spec, stream, {"name": "perf", "trigger": {"performance": {"floor": 0.8, "consecutive": 1}}})
    perf = report.policy("perf")
    fired = retrain_batches(perf)
    assert fired and min(fired) == DRIFT_AT  # the first post-drift batch is scored below the floor
    assert perf.promotions >= 1
    first = next(b for b in perf.batches if b.retrain)
    assert first.gate_passed is not None and first.degraded is True


def test_replay_is_deterministic_with_and_without_threads(spec, stream):
    items = (
        {"name": "every-2", "trigger": {"schedule": {"every": 2}}},
        {"name": "drift", "trigger": {"drift": {}}, "window": {"kind": "decay", "half_life": "5D"}},
        {
            "name": "hybrid",
            "trigger": {"performance": {}, "drift": {}, "schedule": {"every": 3}},
            "gate": False,
        },
    )
    keys = [
        "batch",
        "accuracy",
        "metric",
        "champion",
        "retrain",
        "reason",
        "detail",
        "promoted",
        "gate_ci_low",
    ]

    def fingerprint(report: bt.BacktestReport) -> list:
        return [[p.name, [[getattr(b, k) for k in keys] for b in p.batches]] for p in report.policies]

    first = fingerprint(run(spec, stream, *items))
    assert first == fingerprint(run(spec, stream, *items))
    assert first == fingerprint(run(spec, stream, *items, workers=3))


# ---- policy mechanics ----


def test_schedule_retrains_every_n_batches_but_not_after_the_last(spec, stream):
    report = run(spec, stream, {"name": "every-3", "trigger": {"schedule": {"every": 3}}, "gate": False})
    p = report.policy("every-3")
    # scored batches 3..13; retrain after the 3rd, 6th and 9th scored batch (the 12th does not exist)
    assert retrain_batches(p) == [5, 8, 11]
    assert p.promotions == 3 and p.batches[-1].reason == "end"
    assert [b.champion for b in p.batches] == [2, 2, 2, 5, 5, 5, 8, 8, 8, 11, 11]
    assert p.train_seconds > 0


def test_a_gate_that_always_rejects_keeps_the_first_champion(spec):
    strict = {
        "require_superiority": True,
        "tolerance": 0.5,
    }  # no challenger is 0.5 AUC better on a stable stream
    report = run(
        spec,
        synthetic_stream(drift_at=None),
        {"name": "strict", "trigger": {"schedule": {"every": 1}}, "gate": strict},
    )
    p = report.policy("strict")
    assert p.retrains == len(p.batches) - 1 and p.promotions == 0
    assert {b.champion for b in p.batches} == {WARMUP - 1}
    assert all(b.gate_passed is False for b in p.batches if b.retrain)


def test_cooldown_blocks_retrains_after_a_promotion(spec, stream):
    # batches are 10 days; a 15-day cooldown skips every other scheduled retrain
    report = run(
        spec, stream, {"name": "cd", "trigger": {"schedule": {"every": 1}, "cooldown": "15D"}, "gate": False}
    )
    p = report.policy("cd")
    assert retrain_batches(p) == [3, 5, 7, 9, 11]
    assert [b.reason for b in p.batches[:3]] == ["schedule", "cooldown", "schedule"]


def test_volume_trigger_counts_rows_since_the_champions_data(spec, stream):
    # rolling window of 480 rows, min_new_share 0.5 -> 240 new rows -> every batch; 1.0 -> every 2nd
    report = run(spec, stream, {"name": "vol", "trigger": {"volume": {"min_new_share": 1.0}}, "gate": False})
    assert retrain_batches(report.policy("vol")) == [4, 6, 8, 10, 12]


def test_refit_trains_again_on_the_holdout_after_a_pass(spec, stream):
    lenient = {"tolerance": 1.0, "floor": None}
    report = run(
        spec,
        stream,
        {"name": "gated", "trigger": {"schedule": {"every": 4}}, "gate": lenient},
        {"name": "refit", "trigger": {"schedule": {"every": 4}}, "gate": lenient, "refit": True},
    )
    gated, refit = report.policy("gated"), report.policy("refit")
    assert retrain_batches(gated) == retrain_batches(refit) and gated.promotions == refit.promotions > 0
    assert refit.train_seconds > gated.train_seconds
    # same decisions, different models afterwards: scores differ on some batch after the first promotion
    assert [b.metric for b in gated.batches] != [b.metric for b in refit.batches]


def test_prediction_spans_equal_one_call_per_batch(spec, stream):
    replay = bt.prepare(stream, spec, batch_rows=ROWS, warmup=WARMUP)
    cache = bt.ReplayCache(replay)
    fitted = cache.fit(spec, replay.bounds[WARMUP - 1][1], holdout=False)
    for i in range(WARMUP, replay.n_batches):
        lo, hi = replay.bounds[i]
        direct = training.predict_scores(fitted.model, stream.iloc[lo:hi], spec.feature_names)
        np.testing.assert_array_equal(cache.scores(fitted, lo, hi), direct)
    assert cache.counts["predict"] < replay.n_scored  # it predicted ahead


def test_marked_drift_delay_counts_to_the_first_retrain_at_or_after_it():
    rec = [
        bt.BatchRecord(
            batch=b, start="", end="", rows=1, accuracy=1.0, metric=1.0, champion=0, retrain=r, reason="x"
        )
        for b, r in [(3, True), (4, False), (5, False), (6, True), (7, False), (8, False)]
    ]
    assert bt.detection_delays(rec, [4, 7]) == [2, None]
    assert bt.detection_delays(rec, [3]) == [0]


# ---- batches and marked drifts ----


def test_batches_by_period_and_by_rows(stream):
    by_rows = bt.batch_bounds(stream["ts"], rows=1000)
    assert by_rows[0] == (0, 1000) and by_rows[-1] == (3000, len(stream))
    by_week = bt.batch_bounds(stream["ts"], period="7D")
    assert [hi - lo for lo, hi in by_week[:-1]] == [168] * (len(by_week) - 1)
    assert sum(hi - lo for lo, hi in by_week) == len(stream)
    with pytest.raises(ValueError, match="exactly one"):
        bt.batch_bounds(stream["ts"], rows=5, period="7D")


def test_prepare_locates_marked_drifts_and_rejects_bad_ones(spec, stream):
    replay = bt.prepare(stream, spec, batch_rows=ROWS, warmup=WARMUP, drifts=[9])
    assert replay.marked == (9,)
    when = stream["ts"].iloc[DRIFT_AT * ROWS + 5]
    assert bt.prepare(stream, spec, batch_rows=ROWS, warmup=WARMUP, drifts=[str(when)]).marked == (DRIFT_AT,)
    with pytest.raises(ValueError, match="warm-up"):
        bt.prepare(stream, spec, batch_rows=ROWS, warmup=WARMUP, drifts=[1])
    with pytest.raises(ValueError, match="outside"):
        bt.prepare(stream, spec, batch_rows=ROWS, warmup=WARMUP, drifts=[99])
    with pytest.raises(ValueError, match="nothing to score"):
        bt.prepare(stream, spec, batch_rows=ROWS, warmup=N_BATCHES)
    with pytest.raises(ValueError, match="lacks the spec's columns"):
        bt.prepare(stream.drop(columns=["x2"]), spec, batch_rows=ROWS)


def test_prepare_parses_string_times_and_drops_unlabelled_rows(spec, stream):
    raw = stream.assign(ts=stream["ts"].astype(str), y=stream["y"].astype(float))
    raw.loc[5, "y"] = np.nan
    replay = bt.prepare(raw, spec, batch_rows=ROWS, warmup=WARMUP)
    assert len(replay.frame) == len(stream) - 1
    assert pd.api.types.is_datetime64_any_dtype(replay.frame["ts"])


# ---- Elec2 (slow) ----


@pytest.mark.slow
def test_elec2_replay_is_deterministic_and_retraining_beats_never(elec2, elec2_spec):
    head = elec2[elec2["timestamp"] < pd.Timestamp("1997-01-01")]
    items: list[dict] = [
        {"name": "never"},
        {"name": "every-4", "trigger": {"schedule": {"every": 4}}, "gate": False},
        {"name": "drift", "trigger": {"drift": {}}},
    ]
    a = bt.run_backtest(head, elec2_spec, policies(*items), warmup=4, workers=2)
    b = bt.run_backtest(head, elec2_spec, policies(*items), warmup=4)
    for p in a.policies:
        assert p.per_batch("accuracy") == b.policy(p.name).per_batch("accuracy")
        assert p.per_batch("retrain") == b.policy(p.name).per_batch("retrain")
    every4, never = a.policy("every-4").mean_accuracy, a.policy("never").mean_accuracy
    assert every4 is not None and never is not None
    assert every4 > never + 0.05
