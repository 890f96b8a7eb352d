"""When a gate-passed challenger needs a person's approval (`promotion.approval`). Pure; no prefect."""

from __future__ import annotations

import math
from typing import Literal

import pandas as pd
from pydantic import BaseModel

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


# Version tags of an approval (docs/lineage.md): pending while the retrain is paused, then the answer.
STATUS_TAG = "approval_status"  # pending | approved | rejected | timed_out
FLOW_RUN_TAG = "approval_flow_run_id"


class ApprovalDecision(BaseModel):
    """A person's answer to a paused retrain, or the timeout's reject."""

    approved: bool
    approver: str
    comment: str = ""
    timed_out: bool = False

    @property
    def status(self) -> str:
        return "approved" if self.approved else ("timed_out" if self.timed_out else "rejected")

    def describe(self) -> str:
        """One line for the rejection reason, the audit entry and the logs."""
        if self.timed_out:
            return f"approval timed out ({self.comment}): rejected"
        said = f": {self.comment}" if self.comment else ""
        return f"{'approved' if self.approved else 'rejected'} by {self.approver}{said}"


def timed_out(timeout_seconds: int) -> ApprovalDecision:
    """The default answer when nobody answered in time: reject."""
    return ApprovalDecision(
        approved=False, approver="timeout", comment=f"no answer within {timeout_seconds} s", timed_out=True
    )


def timeout_seconds(duration: str) -> int:
    """`promotion.approval_timeout` (e.g. "1h", "30s") in whole seconds, at least 1."""
    return max(1, int(pd.Timedelta(duration).total_seconds()))


def poll_seconds(timeout: int) -> int:
    """How often the paused run asks the API whether it was resumed: 10 s, faster for short timeouts."""
    return max(1, min(10, timeout // 30))


def pending_tags(flow_run_id: str) -> dict[str, str]:
    """Tags while the version waits: the paused run to resume (`evergreen approve` finds it by this)."""
    return {STATUS_TAG: "pending", FLOW_RUN_TAG: flow_run_id}


def decision_tags(decision: ApprovalDecision, at: str) -> dict[str, str]:
    """Tags once answered: status, who, what they said, when."""
    return {
        STATUS_TAG: decision.status,
        "approval_approver": decision.approver[:250],
        "approval_comment": decision.comment[:4000],
        "approval_decided_at": at,
    }
