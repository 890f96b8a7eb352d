"""Row-level batch checks (evergreen.batch_checks) on real Elec2 weeks and small synthetic frames."""

from __future__ import annotations

import json
from dataclasses import astuple

import numpy as np
import pandas as pd
import pytest

from adapters.batch_files import read_batch
from evergreen import batch_checks as bc
from evergreen.spec import ModelSpec, parse_spec
from evergreen.validation import coerce_batch
from tests.support.builders import elec2_weeks, write_batch

NOW = pd.Timestamp("2026-12-01 12:00", tz="UTC")


@pytest.fixture(scope="module")
def weeks() -> list[pd.DataFrame]:
    return elec2_weeks()[:10]


@pytest.fixture(scope="module")
def history(weeks, elec2_spec) -> pd.DataFrame:
    """The index of the first 8 weeks, as after the issue's setup ingest."""
    return bc.index_rows(pd.concat(weeks[:8], ignore_index=True), elec2_spec)


def _flip(week: pd.DataFrame) -> pd.DataFrame:
    return week.assign(**{"class": week["class"].map({"UP": "DOWN", "DOWN": "UP"})})


def _partition_holds(check: bc.BatchCheck) -> bool:
    c = check.counts
    return c.received == c.duplicates_in_batch + c.duplicates_of_history + c.conflicts + c.new


# ------------------------------------------------------------------------------------- admission


def test_empty_frame_is_rejected(elec2_spec):
    check = bc.check_batch(pd.DataFrame(columns=elec2_spec.columns), None, elec2_spec, NOW)
    assert check.status == "rejected" and check.rows.empty
    assert check.reasons[0].startswith("empty batch: 0 rows")


def test_header_only_csv_is_rejected(tmp_path, elec2_spec, weeks, history):
    path = tmp_path / "header.csv"
    path.write_text(",".join(weeks[0].columns) + "\n")
    frame = coerce_batch(read_batch(path), elec2_spec)
    assert len(frame) == 0 and frame["nswprice"].dtype == object  # what ingest used to commit
    check = bc.check_batch(frame, history, elec2_spec, NOW)
    assert check.status == "rejected" and "empty batch" in check.message()


def test_a_row_dated_2030_is_rejected(weeks, history, elec2_spec):
    batch = weeks[8].copy()
    batch.loc[100, "timestamp"] = pd.Timestamp("2030-01-01 00:00")
    check = bc.check_batch(batch, history, elec2_spec, NOW)
    assert check.status == "rejected" and check.rows.empty
    (reason,) = check.reasons
    assert reason.startswith("1 rows have timestamp after 2026-12-02 12:00:00")
    assert "latest 2030-01-01 00:00:00" in reason


def test_future_tolerance_is_configurable(weeks, elec2_spec):
    batch = weeks[8].assign(timestamp=NOW.tz_localize(None) + pd.Timedelta("2h"))
    assert bc.admit(batch, elec2_spec, NOW) == []  # within the default 1D
    strict = elec2_spec.with_overrides({"data.checks.max_future": "1h"})
    assert "336 rows have timestamp after" in bc.admit(batch, strict, NOW)[0]
    off = elec2_spec.with_overrides({"data.checks.max_future": None})
    assert bc.admit(batch.assign(timestamp=pd.Timestamp("2099-01-01")), off, NOW) == []


def test_aware_times_are_compared_in_utc(weeks, elec2_spec):
    # 20:00 in UTC+10 is 10:00 UTC: before NOW + 1D although the wall clock reads a later day.
    batch = weeks[8].head(3).assign(timestamp=pd.Timestamp("2026-12-02 20:00", tz="Australia/Sydney"))
    assert bc.admit(batch, elec2_spec, NOW) == []
    assert bc.admit(batch, elec2_spec, NOW.tz_localize(None) - pd.Timedelta("2D")) != []


def test_unparseable_times_are_rejected(tmp_path, weeks, elec2_spec):
    batch = weeks[8].astype({"timestamp": str})
    batch.loc[[3, 4], "timestamp"] = ["not a date", ""]
    frame = coerce_batch(read_batch(tmp_path / write_batch(batch, tmp_path / "w.csv")), elec2_spec)
    check = bc.check_batch(frame, None, elec2_spec, NOW)
    assert check.status == "rejected"
    assert check.reasons == ("2 rows have a missing or unparseable timestamp (data rows [4, 5], ...)",)


def test_missing_columns_are_rejected(weeks, elec2_spec):
    check = bc.check_batch(weeks[8].drop(columns=["class"]), None, elec2_spec, NOW)
    assert check.status == "rejected" and check.reasons == ("missing columns ['class']",)


# ---------------------------------------------------------------------------- rows vs history


def test_clean_new_week_is_accepted(weeks, history, elec2_spec):
    check = bc.check_batch(weeks[8], history, elec2_spec, NOW)
    assert check.ok and check.reasons == ()
    assert astuple(check.counts) == (336, 0, 0, 0, 0, 336)
    pd.testing.assert_frame_equal(check.rows, weeks[8])


def test_shuffled_copy_of_an_ingested_week_is_a_duplicate(weeks, history, elec2_spec):
    check = bc.check_batch(weeks[7].sample(frac=1, random_state=1), history, elec2_spec, NOW)
    assert check.status == "duplicate" and check.rows.empty
    assert check.counts.duplicates_of_history == 336 and check.counts.new == 0


def test_half_overlap_of_two_weeks_keeps_only_new_rows(weeks, history, elec2_spec):
    batch = pd.concat([weeks[8].iloc[:168], weeks[7].iloc[168:]]).sample(frac=1, random_state=2)
    check = bc.check_batch(batch, history, elec2_spec, NOW)
    assert check.ok and _partition_holds(check)
    assert (check.counts.duplicates_of_history, check.counts.new) == (168, 168)
    assert "168 rows were already ingested" in check.reasons[0]
    assert set(check.rows["timestamp"]) == set(weeks[8]["timestamp"].iloc[:168])
    # Once appended, the same batch is a whole duplicate: a retry is idempotent.
    merged = bc.merge_index(history, check.rows, elec2_spec)
    assert len(merged) == len(history) + 168
    assert bc.check_batch(batch, merged, elec2_spec, NOW).status == "duplicate"


def test_flipped_labels_are_conflicts(weeks, history, elec2_spec):
    check = bc.check_batch(_flip(weeks[7]), history, elec2_spec, NOW)
    assert check.status == "rejected" and check.rows.empty
    assert (check.counts.conflicts, check.counts.conflicting_keys) == (336, 336)
    assert check.example_keys[0] == f"timestamp={weeks[7]['timestamp'].iloc[0]}"
    assert len(check.example_keys) == bc.EXAMPLES and check.example_keys[0] in check.reasons[0]


def test_a_changed_feature_is_a_conflict(weeks, history, elec2_spec):
    batch = weeks[7].copy()
    batch.loc[5, "nswprice"] += 0.001
    check = bc.check_batch(batch, history, elec2_spec, NOW)
    assert check.status == "rejected"
    assert (check.counts.conflicts, check.counts.duplicates_of_history) == (1, 335)


def test_conflicts_skip_keeps_the_ingested_rows(weeks, history, elec2_spec):
    spec = elec2_spec.with_overrides({"data.checks.conflicts": "skip"})
    check = bc.check_batch(pd.concat([_flip(weeks[7].head(10)), weeks[8]]), history, spec, NOW)
    assert check.ok and check.counts.conflicts == 10 and len(check.rows) == 336
    assert "skipped, the ingested rows stay" in check.reasons[0]
    only_conflicts = bc.check_batch(_flip(weeks[7]), history, spec, NOW)
    assert only_conflicts.status == "duplicate" and only_conflicts.rows.empty


def test_conflicts_allow_appends_them(weeks, history, elec2_spec):
    spec = elec2_spec.with_overrides({"data.checks.conflicts": "allow"})
    check = bc.check_batch(_flip(weeks[7]), history, spec, NOW)
    assert check.ok and check.counts.new == 336 and check.counts.conflicts == 0


def test_in_batch_duplicates_are_dropped_with_a_count(weeks, history, elec2_spec):
    batch = pd.concat([weeks[8], weeks[8].iloc[:10], weeks[7].iloc[:4]], ignore_index=True)
    check = bc.check_batch(batch, history, elec2_spec, NOW)
    assert check.ok and _partition_holds(check)
    assert astuple(check.counts) == (350, 10, 4, 0, 0, 336)
    assert check.rows["timestamp"].is_unique and len(check.rows) == 336


def test_duplicates_reject_refuses_overlaps_but_not_retries(weeks, history, elec2_spec):
    spec = elec2_spec.with_overrides({"data.checks.duplicates": "reject"})
    overlap = pd.concat([weeks[8].iloc[:168], weeks[7].iloc[168:]])
    assert bc.check_batch(overlap, history, spec, NOW).status == "rejected"
    repeated = pd.concat([weeks[8], weeks[8].iloc[:1]])
    assert bc.check_batch(repeated, history, spec, NOW).status == "rejected"
    assert bc.check_batch(weeks[7], history, spec, NOW).status == "duplicate"


def test_same_key_twice_in_one_batch_with_different_labels_conflicts(weeks, elec2_spec):
    batch = pd.concat([weeks[8], _flip(weeks[8].iloc[[0]])], ignore_index=True)
    check = bc.check_batch(batch, None, elec2_spec, NOW)
    assert check.status == "rejected"
    assert (check.counts.conflicts, check.counts.conflicting_keys, check.counts.new) == (2, 1, 335)


def test_a_history_with_conflicts_of_its_own_still_indexes(weeks, elec2_spec):
    dirty = bc.index_rows(pd.concat([weeks[7], _flip(weeks[7]), weeks[7]]), elec2_spec)
    assert len(dirty) == 2 * 336  # distinct (key, content) pairs
    assert bc.check_batch(weeks[7], dirty, elec2_spec, NOW).status == "duplicate"
    assert bc.check_batch(weeks[8], dirty, elec2_spec, NOW).ok


def test_as_dict_is_json(weeks, history, elec2_spec):
    out = json.loads(json.dumps(bc.check_batch(_flip(weeks[7]), history, elec2_spec, NOW).as_dict()))
    assert out["status"] == "rejected" and out["counts"]["conflicts"] == 336 and out["example_keys"]


# --------------------------------------------------------------------------------- the index


def test_index_agrees_across_file_formats_and_dtypes(tmp_path, weeks, elec2_spec):
    week = weeks[8]
    expected = bc.index_rows(week, elec2_spec)
    assert list(expected.dtypes) == [np.dtype("uint64")] * 2
    for name in ("w.csv", "w.parquet"):
        read = coerce_batch(read_batch(tmp_path / write_batch(week, tmp_path / name)), elec2_spec)
        pd.testing.assert_frame_equal(bc.index_rows(read, elec2_spec), expected)
    retyped = week.astype({"day": "float64", "class": object}).assign(
        timestamp=week["timestamp"].dt.tz_localize("UTC").dt.tz_convert("Europe/Berlin").dt.as_unit("ns")
    )
    pd.testing.assert_frame_equal(bc.index_rows(retyped, elec2_spec), expected)


def test_empty_index_and_merge(weeks, elec2_spec):
    empty = bc.index_rows(weeks[8].iloc[:0], elec2_spec)
    pd.testing.assert_frame_equal(empty, bc.empty_index())
    once = bc.merge_index(empty, weeks[8], elec2_spec)
    pd.testing.assert_frame_equal(bc.merge_index(once, weeks[8], elec2_spec), once)
    assert len(once) == 336


# ---------------------------------------------------------------------- synthetic, extra keys


def _sensor_spec(**checks) -> ModelSpec:
    return parse_spec(
        {
            "name": "sensors",
            "data": {
                "path": "sensors",
                "target": "y",
                "time_column": "t",
                "positive_label": 1,
                "checks": checks,
            },
            "features": [
                {"name": "sensor", "type": "categorical", "categories": ["a", "b"]},
                {"name": "x", "type": "numeric", "nullable": True},
            ],
        }
    )


def _sensors(t: list[str], sensor: list[str], x: list[float], y: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"t": pd.to_datetime(t), "sensor": sensor, "x": x, "y": y})


def test_extra_key_columns_separate_rows_at_one_time():
    batch = _sensors(["2024-01-01"] * 2, ["a", "b"], [1.0, 2.0], [0, 1])
    assert bc.check_batch(batch, None, _sensor_spec(), NOW).status == "rejected"  # key = time alone
    keyed = _sensor_spec(key=["sensor"])
    check = bc.check_batch(batch, None, keyed, NOW)
    assert check.ok and check.counts.new == 2
    history = bc.index_rows(batch, keyed)
    again = _sensors(["2024-01-01"], ["b"], [2.0], [0])
    conflict = bc.check_batch(again, history, keyed, NOW)
    assert conflict.status == "rejected" and conflict.example_keys == ("t=2024-01-01 00:00:00, sensor=b",)


def test_missing_values_and_signed_zero_compare_as_equal():
    spec = _sensor_spec(key=["sensor"])
    history = bc.index_rows(_sensors(["2024-01-01"] * 2, ["a", "b"], [np.nan, 0.0], [0, 1]), spec)
    again = _sensors(["2024-01-01"] * 2, ["a", "b"], [float("nan"), -0.0], [0, 1])
    assert bc.check_batch(again, history, spec, NOW).status == "duplicate"
