"""The `data.checks` section of a model spec (row checks at ingest: evergreen.batch_checks)."""

from __future__ import annotations

import pytest

from evergreen.spec import DataChecks, SpecError, parse_spec
from tests.support.builders import elec2_spec_dict


def _with_checks(checks: dict) -> dict:
    raw = elec2_spec_dict()
    raw["data"]["checks"] = checks
    return raw


def test_defaults_keep_the_shipped_spec_valid(elec2_spec):
    assert "checks" not in elec2_spec_dict()["data"]  # models/elec2.yaml does not need the section
    assert elec2_spec.data.checks == DataChecks()
    assert elec2_spec.data.checks.model_dump() == {
        "key": [],
        "duplicates": "skip",
        "conflicts": "reject",
        "max_future": "1D",
    }


def test_every_key_can_be_set():
    checks = {"key": ["day", "period"], "duplicates": "reject", "conflicts": "allow", "max_future": None}
    spec = parse_spec(_with_checks(checks))
    assert spec.data.checks.model_dump() == checks


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        ({"duplicates": "keep"}, "data.checks.duplicates"),
        ({"conflicts": "keep-latest"}, "data.checks.conflicts"),
        ({"max_future": "soon"}, "data.checks.max_future"),
        ({"max_future": "-1D"}, "data.checks.max_future"),
        ({"key": ["day", "day"]}, "columns listed twice"),
        ({"key": ["store"]}, "data.checks.key ['store'] are not features"),
        ({"key": ["class"]}, "data.checks.key ['class'] are not features"),
        ({"dedupe": True}, "data.checks.dedupe"),
    ],
)
def test_bad_checks_name_the_key(checks, expected):
    with pytest.raises(SpecError) as exc:
        parse_spec(_with_checks(checks), source="models/elec2.yaml")
    assert expected in str(exc.value)


def test_overrides_reach_the_checks(elec2_spec):
    spec = elec2_spec.with_overrides({"data.checks.conflicts": "skip", "data.checks.max_future": "2h"})
    assert (spec.data.checks.conflicts, spec.data.checks.max_future) == ("skip", "2h")


def test_performance_alpha_above_one_half_is_a_spec_error() -> None:
    """The bound is one-sided at 1 - alpha: alpha >= 0.5 would be no bound at all (it used to fail mid-run)."""
    from pydantic import ValidationError

    from evergreen.spec_triggers import PerformanceTrigger

    with pytest.raises(ValidationError, match="alpha"):
        PerformanceTrigger(alpha=0.5)
    assert PerformanceTrigger(alpha=0.45).alpha == 0.45
