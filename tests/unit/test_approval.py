"""evergreen.approval: when a passed gate pauses for a person."""

from __future__ import annotations

import math

import pytest

from evergreen.approval import is_borderline, needs_approval, pass_boundary


def test_pass_boundary_sign() -> None:
    assert pass_boundary(0.01, False) == -0.01
    assert pass_boundary(0.01, True) == 0.01


@pytest.mark.parametrize(
    ("ci_low", "superiority", "expected"),
    [
        (-0.005, False, True),  # admits a regression inside the tolerance
        (-0.01, False, True),  # exactly on the boundary
        (0.0, False, False),  # clearly not worse
        (0.02, False, False),
        (0.015, True, True),  # superiority band [0.01, 0.02)
        (0.02, True, False),
        (None, False, False),
        (math.nan, False, False),
    ],
)
def test_is_borderline(ci_low: float | None, superiority: bool, expected: bool) -> None:
    assert is_borderline(ci_low, 0.01, superiority) is expected


def test_needs_approval_modes() -> None:
    assert needs_approval("always", passed=True, ci_low=0.05, tolerance=0.01, require_superiority=False)
    assert not needs_approval(
        "borderline", passed=True, ci_low=0.05, tolerance=0.01, require_superiority=False
    )
    assert (
        needs_approval("never", passed=True, ci_low=-0.005, tolerance=0.01, require_superiority=False)
        is False
    )
    assert needs_approval("borderline", passed=True, ci_low=-0.005, tolerance=0.01, require_superiority=False)
    assert not needs_approval("always", passed=False, ci_low=0.05, tolerance=0.01, require_superiority=False)
