"""The paired rules of the release path: shadow (promote / retire / wait) and watch (regressed / not)."""

from __future__ import annotations

import numpy as np
import pytest

from evergreen import shadow, watch
from evergreen.paired import (
    batch_tag,
    batches_from_tags,
    paired_batch,
    paired_test,
    row_losses,
)


def _batch(key: str, shift: float, n: int = 200, seed: int = 0, ref: str = "1", noise: float = 0.3):
    """Per-row losses of a reference and a candidate whose loss is `shift` higher on average."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.2, 0.8, n)
    cand = base + shift + rng.normal(0, noise, n)
    return paired_batch(key, ref, base, cand)


def test_row_losses_per_metric():
    y = np.array([1, 0, 1, 0])
    p = np.array([0.9, 0.2, 0.4, 0.6])
    ll = row_losses("roc_auc", y, p)
    assert ll == pytest.approx(-np.log([0.9, 0.8, 0.4, 0.4]))
    assert list(row_losses("accuracy", y, p)) == [0, 0, 1, 1]
    assert list(row_losses("mae", np.array([1.0, 2.0]), np.array([1.5, 0.0]))) == [0.5, 2.0]
    assert list(row_losses("rmse", np.array([1.0, 2.0]), np.array([1.5, 0.0]))) == [0.25, 4.0]
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    assert list(row_losses("accuracy", np.array([0, 1]), proba)) == [0, 1]
    assert row_losses("logloss", np.array([0, 1]), proba) == pytest.approx(-np.log([0.7, 0.1]))


def test_batches_combine_exactly_and_round_trip_through_tags():
    a, b = _batch("a", 0.05, seed=1), _batch("b", 0.05, seed=2)
    both = paired_test([a, b])
    assert both.n == 400 and both.batches == 2
    tags = {**batch_tag("shadow.batch", 1, a), **batch_tag("shadow.batch", 2, b), "other": "x"}
    tags["shadow.batch.3"] = "{not json"
    assert batches_from_tags("shadow.batch", tags) == [a, b]
    assert paired_test(batches_from_tags("shadow.batch", tags)) == both


def test_no_rows_is_no_evidence():
    t = paired_test([])
    assert t.n == 0 and t.p_worse == 1.0 and t.p_better == 1.0


def test_shadow_waits_for_n_batches_then_promotes_a_better_one():
    better = [_batch(f"b{i}", -0.1, seed=i) for i in range(3)]
    early = shadow.decide(better[:2], "1", needed=3, alpha=0.05, min_rows=100)
    assert early.decision == "wait" and "2 of 3" in early.summary
    done = shadow.decide(better, "1", needed=3, alpha=0.05, min_rows=100)
    assert done.decision == "promote" and done.test.p_better < 0.05, done.summary
    assert "better than champion v1" in done.summary


def test_shadow_retires_a_significantly_worse_one():
    worse = [_batch(f"w{i}", 0.1, seed=10 + i) for i in range(3)]
    d = shadow.decide(worse, "1", needed=3, alpha=0.05, min_rows=100)
    assert d.decision == "retire" and d.test.p_worse < 0.05, d.summary


def test_shadow_promotes_a_tie_and_waits_for_min_rows():
    same = [_batch(f"s{i}", 0.0, seed=20 + i) for i in range(3)]
    assert shadow.decide(same, "1", needed=3, alpha=0.05, min_rows=100).decision == "promote"
    few = [_batch(f"f{i}", 0.5, n=20, seed=i) for i in range(3)]
    d = shadow.decide(few, "1", needed=3, alpha=0.05, min_rows=100)
    assert d.decision == "wait" and "min_rows" in d.summary


def test_shadow_counts_only_batches_against_the_current_champion():
    old = [_batch(f"o{i}", 0.3, seed=i, ref="1") for i in range(3)]
    d = shadow.decide(old, "2", needed=3, alpha=0.05, min_rows=100)
    assert d.decision == "wait" and d.batches == 0


def test_watch_flags_a_significant_regression():
    tags = {"replaced_version": "1", "promoted_at": "2026-01-01T00:00:00+00:00"}
    assert watch.is_due(tags, 3, [])
    first = [_batch("w1", 0.15, seed=3)]
    d = watch.decide(first, watch_batches=3, alpha=0.05, min_rows=100)
    assert d.status == "regressed" and d.test.p_worse < d.alpha_per_look, d.summary
    assert not watch.is_due({**tags, watch.REGRESSED_TAG: "true"}, 3, first)


def test_watch_does_not_flag_noise_and_ends_after_k_batches():
    hits = 0
    for seed in range(40):  # same models: under the Bonferroni-corrected rule, rarely a false alarm
        batches = [_batch(f"n{i}", 0.0, seed=100 * seed + i) for i in range(3)]
        hits += any(
            watch.decide(batches[: k + 1], watch_batches=3, alpha=0.05, min_rows=100).status == "regressed"
            for k in range(3)
        )
    assert hits <= 6  # expected <= 0.05 * 40 = 2 false alarms; 6 is far in the binomial tail
    d = watch.decide(
        [_batch(f"n{i}", 0.0, seed=7 + i) for i in range(3)], watch_batches=3, alpha=0.05, min_rows=100
    )
    assert d.status == "passed"
    small = watch.decide([_batch("s", 0.5, n=30)], watch_batches=3, alpha=0.05, min_rows=100)
    assert small.status == "watching"  # too few rows to decide, however large the difference


def test_watch_is_not_due_without_a_previous_or_after_a_rollback_or_k_batches():
    tags = {"replaced_version": "1"}
    assert not watch.is_due({"replaced_version": ""}, 3, [])
    assert not watch.is_due({**tags, "rolled_back_from": "2"}, 3, [])
    assert not watch.is_due(tags, 0, [])
    assert not watch.is_due(tags, 2, [_batch("a", 0.0), _batch("b", 0.0)])
