"""When a gate-passed challenger needs a person's approval (`promotion.approval`). Pure; no prefect."""

from __future__ import annotations

import math
from typing import Literal

Approval = Literal["never", "borderline", "always"]


def pass_boundary(tolerance: float, require_superiority: bool) -> float:
    """The value the gate's lower CI bound must clear: +tolerance (superiority) or -tolerance (non-inferiority)."""
    return tolerance if require_superiority else -tolerance


def is_borderline(ci_low: float | None, tolerance: float, require_superiority: bool) -> bool:
    """True when the passing CI's lower bound lies in the tolerance-wide band just above the pass boundary.

    With non-inferiority that band is [-tolerance, 0): the interval admits a regression and the gate
    passed only thanks to the tolerance. With superiority it is [+tolerance, 2*tolerance). No champion
    (ci_low None) or an undefined bound is never borderline: there is nothing to weigh.
    """
    if ci_low is None or math.isnan(ci_low):
        return False
    boundary = pass_boundary(tolerance, require_superiority)
    return boundary <= ci_low < boundary + tolerance


def needs_approval(
    approval: Approval, *, passed: bool, ci_low: float | None, tolerance: float, require_superiority: bool
) -> bool:
    """Only a passed gate asks a person; `always` asks every time, `borderline` only on a borderline interval."""
    if not passed or approval == "never":
        return False
    if approval == "always":
        return True
    return is_borderline(ci_low, tolerance, require_superiority)
