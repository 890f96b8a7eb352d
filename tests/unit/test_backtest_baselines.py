"""Every run's honest baselines (every batch, every N) and the CPU accounting beside them."""

from __future__ import annotations

import pandas as pd
import pytest

from evergreen import backtest as bt
from evergreen.spec import ModelSpec, parse_spec
from tests.support.builders import synthetic_stream
from tests.unit.backtest_synth import SYNTH_SPEC, run


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return parse_spec(SYNTH_SPEC)


@pytest.fixture(scope="module")
def stream() -> pd.DataFrame:
    return synthetic_stream()


def test_baselines_use_the_spec_model_with_no_cooldown_and_no_gate(spec):
    every, every_n = bt.baseline_policies(4)
    assert (every.name, every_n.name) == ("baseline-every-batch", "baseline-every-4")
    for p in (every, every_n):
        rp = bt.resolve_policy(p, spec)
        assert p.baseline and not rp.gated and rp.cooldown is None
        assert p.params == {} and p.window is None  # the spec's estimator and window
    assert bt.resolve_policy(every, spec).schedule == 1


def test_with_baselines_puts_them_first_and_drops_a_user_policy_of_the_same_name():
    user = bt.parse_policies([{"name": "baseline-every-batch"}, {"name": "mine"}]).policies
    names = [p.name for p in bt.with_baselines(user, 3)]
    assert names == ["baseline-every-batch", "baseline-every-3", "mine"]


def test_every_run_reports_baselines_and_cpu_relative_to_every_batch(spec, stream):
    report = run(spec, stream, {"name": "never", "trigger": "never", "gate": False}, baseline_every=4)
    by = {p.name: p for p in report.policies}
    assert {n for n, p in by.items() if p.baseline} == {"baseline-every-batch", "baseline-every-4"}
    every = by["baseline-every-batch"]
    assert every.cpu_ratio == pytest.approx(1.0) and every.train_seconds > 0
    # retraining a quarter as often costs less CPU than retraining every batch; never costs nothing
    assert by["baseline-every-4"].retrains < every.retrains
    assert 0 < by["baseline-every-4"].cpu_ratio < 1
    assert by["never"].cpu_ratio == 0.0
    rows = {r["policy"]: r for r in bt.summary_rows(report)}
    assert rows["baseline-every-batch"]["baseline"] and not rows["never"]["baseline"]
    assert rows["never"]["cpu_vs_every_batch"] == 0.0 and "wall_seconds" in rows["never"]
    md = bt.to_markdown(report)
    assert "baseline-every-batch** (baseline)" in md or "| baseline-every-batch (baseline)" in md
    assert "CPU vs every batch" in md
    # the paired difference: zero for the baseline itself, and never's loss is the mean of its batch gaps
    assert every.vs_every_batch.mean == 0.0 and every.vs_every_batch.low == every.vs_every_batch.high == 0.0
    gap = by["never"].vs_every_batch
    per_batch = [n.metric - e.metric for n, e in zip(by["never"].batches, every.batches, strict=True)]
    assert gap.mean == pytest.approx(sum(per_batch) / len(per_batch)) and gap.low <= gap.mean <= gap.high
    assert rows["never"]["diff_vs_every_batch"] == pytest.approx(gap.mean, abs=1e-4)
    assert "vs every batch (95% CI)" in md


def test_update_mode_counts_updates_and_refits_after_refit_every(spec, stream):
    upd = {"trees": 5, "window": "20D", "refit_every": 3, "refit_on_drift": True}
    report = run(
        spec,
        stream,
        {
            "name": "upd",
            "trigger": {"schedule": {"every": 1}, "cooldown": None},
            "gate": False,
            "update": upd,
        },
        baseline_every=4,
    )
    by = {p.name: p for p in report.policies}
    p = by["upd"]
    modes = [b.mode for b in p.batches if b.retrain]
    # three updates in a row, then a full refit, and again
    assert modes[:8] == ["update", "update", "update", "full", "update", "update", "update", "full"]
    assert p.updates == modes.count("update") and p.full_fits == modes.count("full")
    assert by["baseline-every-batch"].updates == 0  # baselines are always full fits
    # a 5-tree update on 20 days costs less CPU than a full fit on everything
    upd_s = [b.train_seconds for b in p.batches if b.mode == "update"]
    full_s = [b.train_seconds for b in by["baseline-every-batch"].batches if b.retrain]
    assert sum(upd_s) / len(upd_s) < sum(full_s) / len(full_s)
    assert p.cpu_ratio is not None and p.cpu_ratio < 1
    assert p.mean_accuracy is not None and p.mean_accuracy > 0.5


def test_gated_updates_are_gated_like_any_model(spec, stream):
    upd = {"trees": 5, "window": "20D", "refit_every": 2, "refit_on_drift": False}
    report = run(spec, stream, {"name": "g", "trigger": {"schedule": {"every": 1}}, "update": upd})
    (p,) = report.policies
    ups = [b for b in p.batches if b.mode == "update"]
    assert ups and all(b.gate_passed is not None for b in ups)
    assert p.updates == len(ups)
