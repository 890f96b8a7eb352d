"""Ingest's volume rule is policy.volume_check with the backtester's inputs."""

from __future__ import annotations

from evergreen.policy import volume_check
from evergreen.volume import volume_decision, volume_inputs


def test_inputs_from_champion_lineage():
    v = volume_inputs(3696, {"data_rows": "3360", "train_rows": "3024"})
    assert (v.new_rows, v.champion_rows) == (336, 3024)
    assert v.share == 336 / 3024


def test_no_champion_means_all_rows_are_new_and_no_share():
    for tags in (None, {}, {"data_rows": "10"}):
        v = volume_inputs(500, tags)
        assert (v.new_rows, v.champion_rows, v.share) == (500, None, None)


def test_decision_is_the_backtesters_rule(elec2_spec):
    share = elec2_spec.triggers.volume.min_new_share
    for new, champ in [(336, 3360), (840, 3360), (839, 3360), (10, 40), (0, 100)]:
        assert volume_decision(new, champ, elec2_spec) == volume_check(new, champ, share)
    assert volume_decision(840, 3360, elec2_spec).retrain
    assert not volume_decision(336, 3360, elec2_spec).retrain


def test_no_champion_retrains_and_disabled_never(elec2_spec):
    assert volume_decision(100, None, elec2_spec).retrain
    off = elec2_spec.with_overrides({"triggers.volume.enabled": False})
    d = volume_decision(10_000, 100, off)
    assert not d.retrain and d.reason == "volume"
