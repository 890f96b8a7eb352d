"""CPU accounting: a memoised fit charges every policy that uses it its original CPU cost."""

from __future__ import annotations

import pandas as pd
import pytest

from evergreen.spec import ModelSpec, parse_spec
from tests.support.builders import synthetic_stream
from tests.unit.backtest_synth import SYNTH_SPEC, run


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return parse_spec(SYNTH_SPEC)


@pytest.fixture(scope="module")
def stream() -> pd.DataFrame:
    return synthetic_stream()


def test_cache_hits_are_charged_the_fits_original_cpu(spec, stream):
    same = {"trigger": {"schedule": {"every": 2}, "cooldown": None}, "gate": False}
    report = run(spec, stream, {"name": "a", **same}, {"name": "b", **same})
    a, b = report.policies
    assert a.retrains == b.retrains > 0
    # b's fits were all cache hits (each fit computed once), yet b pays what a paid
    assert report.compute_calls["fit"] <= a.retrains + 1  # + the warm-up fit
    assert b.train_seconds == pytest.approx(a.train_seconds) and b.train_seconds > 0
    assert [x.train_seconds for x in b.batches] == [x.train_seconds for x in a.batches]


def test_update_cache_hits_are_charged_too(spec, stream):
    upd = {"trees": 5, "window": "20D", "refit_every": 2, "refit_on_drift": False}
    same = {"trigger": {"schedule": {"every": 1}, "cooldown": None}, "gate": False, "update": upd}
    report = run(spec, stream, {"name": "a", **same}, {"name": "b", **same})
    a, b = report.policies
    assert a.updates == b.updates > 0
    assert report.compute_calls["update"] == a.updates
    assert b.train_seconds == pytest.approx(a.train_seconds) and b.train_seconds > 0
