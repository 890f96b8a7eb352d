"""evergreen.labels: a delayed-labels file checked against the ingested rows (pure)."""

from __future__ import annotations

import pandas as pd
import pytest

from evergreen.labels import check_labels, id_column, labels_hash, text
from evergreen.spec import ModelSpec


@pytest.fixture
def spec(elec2_spec: ModelSpec) -> ModelSpec:
    raw = elec2_spec.model_dump(mode="json")
    raw["data"]["delayed_labels"] = {"id_column": "row_id"}
    return ModelSpec.model_validate(raw)


@pytest.fixture
def rows() -> pd.DataFrame:
    """Ids 1-4: 1 and 2 labelled, 3 and 4 waiting for labels."""
    return pd.DataFrame({"row_id": [1, 2, 3, 4], "class": ["UP", "DOWN", None, None]})


def _labels(ids: list[object], labels: list[object]) -> pd.DataFrame:
    return pd.DataFrame({"row_id": ids, "class": labels})


def test_spec_adds_the_id_column(spec: ModelSpec) -> None:
    assert id_column(spec) == "row_id" and spec.columns[-1] == "row_id"


def test_spec_refuses_an_id_column_that_is_a_feature(elec2_spec: ModelSpec) -> None:
    raw = elec2_spec.model_dump(mode="json")
    raw["data"]["delayed_labels"] = {"id_column": "nswprice"}
    with pytest.raises(ValueError, match="delayed_labels.id_column 'nswprice'"):
        ModelSpec.model_validate(raw)


def test_model_without_delayed_labels_is_refused(elec2_spec: ModelSpec) -> None:
    with pytest.raises(ValueError, match="does not declare data.delayed_labels"):
        id_column(elec2_spec)


def test_new_labels_are_kept_with_the_rows_id_values(spec: ModelSpec, rows: pd.DataFrame) -> None:
    check = check_labels(_labels(["3", "4.0", "1"], ["UP", "DOWN", "UP"]), rows, spec)  # text ids, 4.0 == 4
    assert check.status == "ok" and check.counts.new == 2 and check.counts.already_labelled == 1
    assert check.labels["row_id"].tolist() == [3, 4] and check.labels["class"].tolist() == ["UP", "DOWN"]


@pytest.mark.parametrize(
    ("ids", "labels", "reason", "counted"),
    [
        (
            [3, 99],
            ["UP", "UP"],
            "1 labels are for unknown row_id values (no ingested row has them), e.g. 99",
            "unknown_ids",
        ),
        ([1, 3], ["DOWN", "UP"], "1 labels conflict (the row_id is labelled otherwise already", "conflicts"),
        ([3, 3], ["UP", "DOWN"], "2 labels conflict", "conflicts"),
        ([3, None], ["UP", "UP"], "1 rows have a missing row_id or class", "invalid"),
        ([3, 4], ["UP", "SIDEWAYS"], "outside data.labels", "invalid"),
    ],
)
def test_unknown_conflicting_and_invalid_labels_reject_the_file(
    spec: ModelSpec, rows: pd.DataFrame, ids: list[object], labels: list[object], reason: str, counted: str
) -> None:
    check = check_labels(_labels(ids, labels), rows, spec)
    assert check.status == "rejected" and check.labels.empty
    assert reason in "; ".join(check.reasons)
    assert getattr(check.counts, counted) >= 1


def test_repeats_and_relabels_with_the_same_label_are_duplicate(spec: ModelSpec, rows: pd.DataFrame) -> None:
    check = check_labels(_labels([1, 2, 2], ["UP", "DOWN", "DOWN"]), rows, spec)
    assert (
        check.status == "duplicate"
        and check.counts.already_labelled == 2
        and check.counts.repeats_in_file == 1
    )


def test_missing_column_and_empty_file(spec: ModelSpec, rows: pd.DataFrame) -> None:
    assert check_labels(pd.DataFrame({"row_id": [3]}), rows, spec).reasons == ("missing columns ['class']",)
    assert check_labels(_labels([], []), rows, spec).reasons == ("empty labels file: 0 rows",)


def test_hash_ignores_order(spec: ModelSpec) -> None:
    a = _labels([3, 4], ["UP", "DOWN"])
    assert labels_hash(a, spec) == labels_hash(a.iloc[::-1], spec)
    assert labels_hash(a, spec) != labels_hash(_labels([3, 4], ["DOWN", "UP"]), spec)


def test_text_is_canonical() -> None:
    got = text(pd.Series([7, 7.0, "7", "7.5", None, "UP"], dtype=object)).tolist()
    assert got[:4] == ["7", "7", "7", "7.5"] and pd.isna(got[4]) and got[5] == "UP"
    assert text(pd.Series([1.0, float("nan")])).iloc[0] == "1"
