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
