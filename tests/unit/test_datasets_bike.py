"""The shipped bike sharing seed: prepared from seeds/ without leaks, and valid under its own spec (GX)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evergreen.datasets import SEEDS, prepare_bike_sharing, seed_frame, weekly_batches
from evergreen.spec import load_spec
from evergreen.validation import validate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bike():
    return seed_frame("bike_sharing", ROOT / "seeds")


def test_prepared_hourly_frame_without_leaking_columns(bike):
    assert len(bike) == 17379 and bike.columns[0] == "timestamp"
    assert not {"casual", "registered", "instant", "dteday"} & set(bike.columns)
    assert bike["timestamp"].is_monotonic_increasing and not bike["timestamp"].duplicated().any()
    assert str(bike["timestamp"].iloc[0]) == "2011-01-01 00:00:00"
    assert str(bike["timestamp"].iloc[-1]) == "2012-12-31 23:00:00"
    assert bike["cnt"].dtype == "float64" and (bike["cnt"] >= 1).all()
    weeks = weekly_batches(bike, "timestamp")
    assert len(weeks) == 105 and sum(len(w) for w in weeks) == len(bike)


def test_every_column_of_the_spec_is_there_and_a_week_passes_its_checks(bike):
    spec = load_spec("bike_sharing", ROOT / "models")
    assert spec.task == "regression" and spec.metric == "rmse" and not spec.higher_is_better
    assert set(spec.columns) <= set(bike.columns)
    week = weekly_batches(bike, "timestamp")[30]
    summary = validate(week, spec)
    assert summary.success, summary


def test_unknown_model_and_wrong_file_are_named(tmp_path):
    with pytest.raises(ValueError, match="no seed data for model 'nope'.*bike_sharing"):
        seed_frame("nope", ROOT / "seeds")
    bad = tmp_path / "hour.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="missing columns"):
        prepare_bike_sharing(bad)
    assert set(SEEDS) == {"elec2", "bike_sharing"}
