"""GX suites derived from the spec, run for real on Elec2 slices."""

from __future__ import annotations

import numpy as np
import pytest

from evergreen.validation import coerce_batch, validate


@pytest.fixture
def week(elec2):
    return elec2.iloc[:336].copy()


def test_clean_week_passes(week, elec2_spec):
    r = validate(week, elec2_spec)
    assert r.success, r.message()


def _failed(summary):
    return {(f.expectation, f.column) for f in summary.failures}


def test_nan_label(week, elec2_spec):
    week.loc[5, "class"] = np.nan
    r = validate(week, elec2_spec)
    assert ("expect_column_values_to_not_be_null", "class") in _failed(r)
    assert "class" in r.message()


def test_missing_column(week, elec2_spec):
    r = validate(week.drop(columns=["vicprice"]), elec2_spec)
    assert not r.success
    assert "missing column(s) ['vicprice']" in r.message()


def test_wrong_type(week, elec2_spec):
    week["nswprice"] = week["nswprice"].astype(str)
    r = validate(week, elec2_spec)
    assert ("expect_column_values_to_be_in_type_list", "nswprice") in _failed(r)


def test_unknown_category_forbidden(week, elec2_spec):
    week.loc[0, "day"] = 8
    r = validate(week, elec2_spec)
    assert ("expect_column_values_to_be_in_set", "day") in _failed(r)
    allowed = elec2_spec.with_overrides(
        {
            "features": [
                {**f.model_dump(), "allow_unknown": True} if f.name == "day" else f.model_dump()
                for f in elec2_spec.features
            ]
        }
    )
    assert validate(week, allowed).success


def test_unparseable_time_fails_not_null(week, elec2_spec):
    week["timestamp"] = week["timestamp"].astype(str)
    week.loc[2, "timestamp"] = "not a time"
    r = validate(coerce_batch(week, elec2_spec), elec2_spec)
    assert ("expect_column_values_to_not_be_null", "timestamp") in _failed(r)


def test_training_set_needs_rows(week, elec2_spec):
    r = validate(week, elec2_spec, training=True)
    assert ("expect_table_row_count_to_be_between", None) in _failed(r)
