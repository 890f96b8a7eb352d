"""Policy backtest: the replay engine on a synthetic stream with a known abrupt drift, plus the policy vocabulary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evergreen import backtest as bt
from evergreen import policy, training
from evergreen.spec import ModelSpec, parse_spec

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


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return parse_spec(SYNTH_SPEC)


@pytest.fixture(scope="module")
def stream() -> pd.DataFrame:
    return synthetic_stream()


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


# ---- policy vocabulary ----


def test_the_shipped_policies_file_is_valid_for_elec2(elec2_spec):
    pset = bt.load_policies(ROOT / "policies" / "elec2.yaml")
    names = [p.name for p in pset.policies]
    assert {"never", "weekly", "every-4", "performance", "drift-psi", "hybrid"} <= set(names)
    for p in pset.policies:
        bt.resolve_policy(p, elec2_spec)


def test_policy_errors_name_the_policy_and_the_key():
    bad = [
        {"name": "a", "trigger": {"drift": {"threshold": -1}}},
        {"name": "b", "window": {"kind": "rolling"}},
        {"name": "c", "trigger": "sometimes"},
        {"name": "d", "gate": {"tolerence": 0.1}},
        {"name": "e", "trigger": {"schedule": {"every": 0}}},
    ]
    with pytest.raises(bt.PolicyError) as err:
        bt.parse_policies(bad, source="p.yaml")
    msg = str(err.value)
    for where in (
        "policies[0] (a).trigger.drift.threshold",
        "policies[1] (b).window",
        "policies[2] (c).trigger",
        "policies[3] (d).gate.tolerence",
        "policies[4] (e).trigger.schedule.every",
    ):
        assert where in msg
    with pytest.raises(bt.PolicyError, match="unique"):
        bt.parse_policies([{"name": "x"}, {"name": "x"}])
    with pytest.raises(bt.PolicyError, match="expected a list"):
        bt.parse_policies("never")


def test_policy_files_errors(tmp_path):
    with pytest.raises(bt.PolicyError, match="not found"):
        bt.load_policies(tmp_path / "missing.yaml")
    f = tmp_path / "bad.yaml"
    f.write_text("policies: [name: x\n")
    with pytest.raises(bt.PolicyError, match="not valid YAML"):
        bt.load_policies(f)
    f.write_text("policies:\n  - {name: x, trigger: never}\ndrifts: ['2024-01-05', 9]\n")
    assert bt.load_policies(f).drifts == ["2024-01-05", 9]


def test_trigger_rules_merge_onto_the_spec(spec):
    p = policies(
        {"name": "d", "trigger": {"drift": {"threshold": 0.5}, "cooldown": None}, "window": {"kind": "all"}}
    )[0]
    rp = bt.resolve_policy(p, spec)
    assert rp.drift is not None and rp.drift.threshold == 0.5 and rp.drift.bins == 20  # bins from the spec
    assert rp.performance is None and rp.volume is None and rp.schedule is None
    assert rp.cooldown is None and rp.spec.training.window.kind == "all"
    assert rp.spec.gate.enabled and rp.gated

    from_spec = bt.resolve_policy(policies({"name": "s", "trigger": "spec", "gate": False})[0], spec)
    assert from_spec.drift is not None and from_spec.performance is not None and from_spec.volume is not None
    assert from_spec.performance_floor == 0.8 and not from_spec.gated
    assert "drift(psi>0.2" in from_spec.describe() and "volume" in from_spec.describe()

    off = bt.resolve_policy(
        policies({"name": "o", "trigger": {"from_spec": True, "drift": {"enabled": False}}})[0], spec
    )
    assert off.drift is None and off.performance is not None

    never = bt.resolve_policy(policies({"name": "n"})[0], spec)
    assert never.describe() == "never" and never.spec.training.window == spec.training.window


def test_performance_rule_needs_a_floor(spec):
    nofloor = spec.with_overrides({"gate.floor": None, "triggers.performance.floor": None})
    with pytest.raises(bt.PolicyError, match="needs `floor`"):
        bt.resolve_policy(policies({"name": "p", "trigger": {"performance": {}}})[0], nofloor)
    ok = bt.resolve_policy(
        policies({"name": "p", "trigger": {"performance": {"max_drop": 0.05}}})[0], nofloor
    )
    assert ok.performance_floor is None


def test_params_and_gate_overrides_reach_the_spec(spec):
    rp = bt.resolve_policy(
        policies({"name": "p", "params": {"n_estimators": 5}, "gate": {"tolerance": 0.0}})[0], spec
    )
    assert rp.spec.training.estimator.params["n_estimators"] == 5
    assert rp.spec.training.estimator.params["num_leaves"] == 7
    assert rp.spec.gate.tolerance == 0.0 and rp.spec.gate.floor == 0.6
    with pytest.raises(bt.PolicyError, match="policy 'w'"):
        bt.resolve_policy(policies({"name": "w", "params": {}, "gate": {"floor": 2.0}})[0], spec)


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


# ---- policy.py rule helpers ----


def test_policy_rule_helpers():
    assert policy.schedule_check(3, 3).retrain and not policy.schedule_check(2, 3).retrain
    assert policy.volume_check(50, 100, 0.5).retrain and not policy.volume_check(49, 100, 0.5).retrain
    both = policy.combine([policy.performance_check(True, "low"), policy.schedule_check(5, 4)])
    assert both.retrain and both.reason == "performance" and "also: schedule" in both.detail
    none = policy.combine([policy.drift_check(False, "calm")])
    assert not none.retrain and none.reason == "no-trigger"
    assert policy.combine([]).reason == "never"


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
