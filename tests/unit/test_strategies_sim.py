"""The strategy comparison (evergreen/backtest/strategies.py) on a small synthetic history."""

from __future__ import annotations

from evergreen.backtest import strategies
from evergreen.backtest.replay import prepare
from evergreen.spec import ModelSpec
from tests.unit.test_spec_matrix import spec_dict, synth_frame


def test_every_strategy_runs_on_the_same_batches_within_budget() -> None:
    spec = ModelSpec.model_validate(spec_dict("binary"))
    replay = prepare(synth_frame("binary", weeks=6, seed=1), spec, batch_period="7D", warmup=2)
    out = {r.name: r for r in strategies.compare(replay, budget=0.1)}
    assert list(out) == [
        "static", "batch-weekly", "online-batch", "online-row", "active-margin", "active-random",
    ]  # fmt: skip
    total = replay.bounds[-1][1]
    warm = replay.bounds[replay.warmup - 1][1]
    assert out["static"].labels_used == warm and out["batch-weekly"].labels_used == total
    # Same budget for both active strategies, about 10% of every scored batch on top of the warm-up.
    assert out["active-margin"].labels_used == out["active-random"].labels_used
    assert warm < out["active-margin"].labels_used <= warm + 0.1 * (total - warm) + replay.n_scored
    assert out["batch-weekly"].fits == replay.n_scored and out["online-batch"].fits == 1
    for r in out.values():
        assert 0.0 <= r.mean_accuracy <= 1.0 and r.cpu_seconds >= 0.0
