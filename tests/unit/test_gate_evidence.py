"""Issue 9 case 7: the gate judges only rows neither model trained on; too few is 'insufficient evidence'."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evergreen import gate, lineage, training
from evergreen.faults import ENV, fault_point
from evergreen.spec import Gate


def _decision(n: int = 200) -> gate.GateDecision:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    good = np.clip(y * 0.7 + rng.random(n) * 0.3, 0, 1)
    return gate.decide(Gate(latency_p95_ms=None), "roc_auc", y, good, good.copy(), champion_version="3")


def test_enough_unseen_rows_keeps_the_decision():
    d = _decision()
    out = gate.with_evidence(d, unseen_rows=150, excluded_rows=10, min_rows=100)
    assert out.passed is d.passed and not out.insufficient_evidence
    assert out.n_excluded == 10 and out.outcome == "passed"


def test_too_few_unseen_rows_is_insufficient_evidence():
    d = _decision()
    assert d.passed
    out = gate.with_evidence(d, unseen_rows=48, excluded_rows=288, min_rows=100)
    assert out.passed is False and out.insufficient_evidence
    assert out.outcome == "insufficient_evidence"
    assert out.reasons[0].startswith("insufficient evidence: 48 hold-out rows")
    assert "288 excluded" in out.summary
    md = gate.to_markdown(out)
    assert (
        "INSUFFICIENT EVIDENCE" in md and "| hold-out rows excluded (champion trained on them) | 288 |" in md
    )


def test_gate_spec_min_holdout_rows_default_and_bounds():
    assert Gate().min_holdout_rows == 100
    with pytest.raises(ValueError):
        Gate(min_holdout_rows=0)


def _holdout() -> pd.DataFrame:
    t = pd.date_range("2020-01-01", periods=10, freq="h")
    return pd.DataFrame({"timestamp": t, "x": range(10)})


def test_champion_trained_until_uses_holdout_end_after_refit():
    tags = {"train_end": "2020-01-01 05:00:00", "holdout_end": "2020-01-01 09:00:00", "refit": "false"}
    assert training.champion_trained_until(tags) == "2020-01-01 05:00:00"
    # a refit learned its own hold-out too (train_end already covers it, holdout_end is the safe bound)
    tags_refit = {**tags, "refit": "true", "train_end": "2020-01-01 08:00:00"}
    assert training.champion_trained_until(tags_refit) == "2020-01-01 09:00:00"
    assert training.champion_trained_until(None) is None
    assert training.champion_trained_until({"train_end": ""}) is None


def test_unseen_holdout_keeps_rows_strictly_after_the_bound():
    h = _holdout()
    assert len(training.unseen_holdout(h, "timestamp", None)) == 10
    out = training.unseen_holdout(h, "timestamp", "2020-01-01 05:00:00")
    assert list(out["x"]) == [6, 7, 8, 9]
    assert training.unseen_holdout(h, "timestamp", "2020-01-02 00:00:00").empty


def test_unseen_holdout_numeric_and_tz_columns():
    h = pd.DataFrame({"t": [1.0, 2.0, 10.0], "x": [0, 1, 2]})
    assert list(training.unseen_holdout(h, "t", "2.0")["x"]) == [2]  # numeric, not text order
    tz = pd.DataFrame({"t": pd.date_range("2020-01-01", periods=3, freq="D", tz="UTC"), "x": [0, 1, 2]})
    assert list(training.unseen_holdout(tz, "t", "2020-01-02 00:00:00+00:00")["x"]) == [2]


def test_judgement_tags_state_what_was_judged_and_registered():
    tags = lineage.judgement_tags(
        retrain_key="fr-1",
        outcome="passed",
        challenger={"train_start": "a", "train_end": "b"},
        challenger_rows=100,
        gate_rows=336,
        gate_bounds=("c", "d"),
        excluded_rows=0,
        registered={"train_start": "a", "train_end": "d"},
        registered_rows=436,
        refit=True,
    )
    assert tags["retrain_key"] == "fr-1" and tags["gate_outcome"] == "passed"
    assert tags["gate_judged"].startswith("challenger trained on a..b (100 rows), judged on 336")
    assert tags["registered"] == "refit on a..d (436 rows, hold-out included)"
    assert tags["gate_rows"] == "336" and tags["gate_excluded_rows"] == "0"


def test_fault_point_is_off_unless_named(monkeypatch):
    monkeypatch.setenv(ENV, "ingest:other")
    fault_point("retrain:after-register")  # not named: returns
    monkeypatch.delenv(ENV)
    fault_point("retrain:after-register")


def test_retrain_lock_name_is_the_limit_evergreen_up_creates():
    from adapters.prefect_lock import LEASE_SECONDS, limit_name
    from stack.limits import retrain_limit_name

    assert limit_name("elec2") == retrain_limit_name("elec2") == "evergreen-retrain-elec2"
    assert LEASE_SECONDS >= 60  # the Prefect server rejects shorter leases
