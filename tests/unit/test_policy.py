"""The trigger rules as Decisions (evergreen.policy): cooldown, schedule, volume, drift, combine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from evergreen import policy

NOW = datetime(2026, 1, 10, tzinfo=UTC)


def test_cooldown_blocks_until_the_window_has_passed() -> None:
    inside = policy.cooldown_check(NOW - timedelta(hours=5), NOW, "6h", reason="drift")
    assert not inside.retrain and inside.reason == "cooldown"
    after = policy.cooldown_check(NOW - timedelta(hours=6), NOW, "6h", reason="drift")
    assert after.retrain and after.reason == "drift"


@pytest.mark.parametrize("last, cooldown", [(None, "6h"), (NOW, None)])
def test_no_cooldown_applies(last, cooldown) -> None:
    assert policy.cooldown_check(last, NOW, cooldown).retrain


def test_force_skips_the_cooldown() -> None:
    d = policy.cooldown_check(NOW, NOW, "27D", force=True, reason="manual")
    assert d.retrain and d.reason == "manual" and "forced" in d.detail


def test_schedule_counts_batches() -> None:
    assert [policy.schedule_check(n, 3).retrain for n in range(5)] == [False, False, False, True, True]
    with pytest.raises(ValueError):
        policy.schedule_check(1, 0)


def test_volume_share_of_the_champions_rows() -> None:
    assert policy.volume_check(250, 1000, 0.25).retrain
    assert not policy.volume_check(249, 1000, 0.25).retrain
    assert policy.volume_check(1, 0, 0.25).retrain  # no champion rows: any new data is enough


def test_drift_check_carries_the_verdict_and_score() -> None:
    d = policy.drift_check(True, "2/3 features drifted", 0.41)
    assert d.retrain and d.reason == "drift" and d.detail.startswith("max PSI 0.410")
    assert not policy.drift_check(False, "quiet").retrain


def test_combine_takes_the_first_firing_rule_and_names_the_others() -> None:
    rules = [
        policy.performance_check(False, "ok"),
        policy.drift_check(True, "drifted"),
        policy.volume_check(10, 10, 0.5),
    ]
    d = policy.combine(rules)
    assert d.retrain and d.reason == "drift" and d.detail.endswith("(also: volume)")
    quiet = policy.combine([policy.performance_check(False, "ok")])
    assert not quiet.retrain and quiet.reason == "no-trigger"
    assert policy.combine([]).reason == "never"
