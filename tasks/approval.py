"""Human approval of a gate-passed version (issue 13 part 3, spec `promotion.approval`).

The retrain flow calls `approval_gate` between registration and the alias move. When the spec asks for a
person (evergreen.approval.needs_approval), the run emits `evergreen.approval.requested`, then pauses with
Prefect's own `pause_flow_run(wait_for_input=ApprovalInput)`: the Prefect UI shows ApprovalInput as a
typed form on the paused run, and `evergreen approve` (or `prefect.flow_runs.resume_flow_run(id,
run_input={...})`) answers it through the API. No answer within `promotion.approval_timeout` is a reject.
The answer is tagged on the version, audited (Action.APPROVE) and emitted as `evergreen.approval.decided`.

The pause happens inside the model's retrain lock (flows/retrain.py), so no other retrain or rollback of
the model interleaves with a pending decision; they queue until the answer or the timeout.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run
from pydantic import Field

from adapters import mlflow_registry as registry
from evergreen import approval, events
from evergreen.approval import ApprovalDecision
from evergreen.audit import Action
from evergreen.events import Event
from evergreen.gate import GateDecision
from evergreen.settings import get_settings
from evergreen.spec import ModelSpec
from tasks.announce import emit_event
from tasks.audit import record_decision

PAUSE_KEY = "evergreen-approval"  # one approval pause per retrain run


class ApprovalInput(RunInput):
    """The form on a paused retrain in the Prefect UI (and the run_input `evergreen approve` sends)."""

    approve: bool = Field(
        default=False, description="Tick to make this version champion; leave unticked to reject it."
    )
    approver: str = Field(default="", description="Your name: recorded on the version and in the audit log.")
    comment: str = Field(default="", description="Why: recorded with the decision.")


def approval_gate(
    spec: ModelSpec, version: str, verdict: GateDecision, reason: str, previous: str | None
) -> tuple[GateDecision, ApprovalDecision | None]:
    """The verdict the alias move should follow, and the approval (None when none was needed).

    A rejection (or timeout) turns the gate's pass into a rejection for the alias only: the version stays
    registered, `champion` is untouched, the gate decision on record is the gate's own.
    """
    needed = approval.needs_approval(
        spec.promotion.approval, passed=verdict.passed, ci_low=verdict.ci_low,
        tolerance=spec.gate.tolerance, require_superiority=spec.gate.require_superiority,
    )  # fmt: skip
    if not needed:
        return verdict, None
    decision = request_approval(spec, version, verdict, reason, previous)
    if decision.approved:
        return verdict, decision
    note = f"{decision.describe()} (the gate had passed)"
    return verdict.model_copy(update={"passed": False, "reasons": [note, *verdict.reasons]}), decision


def request_approval(
    spec: ModelSpec, version: str, verdict: GateDecision, reason: str, previous: str | None
) -> ApprovalDecision:
    """Announce, pause for the typed answer (timeout: reject), record and announce the answer.

    Called from the flow itself, not from a task: pausing blocks the flow run.
    """
    model, run_id = spec.name, str(flow_run.get_id() or "")
    timeout = approval.timeout_seconds(spec.promotion.approval_timeout)
    mark_pending(model, version, run_id)
    borderline = approval.is_borderline(verdict.ci_low, spec.gate.tolerance, spec.gate.require_superiority)
    emit_event(
        Event.APPROVAL_REQUESTED,
        model,
        events.approval_requested(
            version=version,
            flow_run_id=run_id,
            verdict=verdict,
            reason=reason,
            borderline=borderline,
            timeout_seconds=timeout,
        ),  # fmt: skip
    )
    log = get_run_logger()
    log.info("%s v%s waits for approval (flow run %s, timeout %s s)", model, version, run_id, timeout)
    try:
        answer = pause_flow_run(
            wait_for_input=ApprovalInput, timeout=timeout, poll_interval=approval.poll_seconds(timeout),
            key=PAUSE_KEY,
        )  # fmt: skip
        decision = ApprovalDecision(
            approved=answer.approve,
            approver=answer.approver.strip() or "unknown",
            comment=answer.comment.strip(),
        )
    except FlowPauseTimeout:
        decision = approval.timed_out(timeout)
        _running_again(run_id)
    log.info("%s v%s: %s", model, version, decision.describe())
    record_approval(model, version, decision, run_id, previous, verdict.summary)
    emit_event(
        Event.APPROVAL_DECIDED,
        model,
        events.approval_decided(
            version=version,
            flow_run_id=run_id,
            approved=decision.approved,
            approver=decision.approver,
            comment=decision.comment,
            timed_out=decision.timed_out,
        ),  # fmt: skip
    )
    return decision


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def mark_pending(model: str, version: str, flow_run_id: str) -> None:
    """Tag the version as waiting (idempotent: safe to retry)."""
    registry.tag_version(get_settings(), model, version, approval.pending_tags(flow_run_id))


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def record_approval(
    model: str, version: str, decision: ApprovalDecision, flow_run_id: str, previous: str | None, gate: str
) -> dict[str, Any]:
    """The answer as version tags and an audit entry (keyed by the run: one entry per approval)."""
    at = datetime.now(UTC).isoformat()
    registry.tag_version(get_settings(), model, version, approval.decision_tags(decision, at))
    return record_decision.fn(
        model, Action.APPROVE, versions={"version": version, "champion": previous},
        reason=decision.describe(), key=f"approval:{flow_run_id or version}",
        evidence={"approved": decision.approved, "approver": decision.approver, "comment": decision.comment,
                  "timed_out": decision.timed_out, "status": decision.status, "flow_run_id": flow_run_id,
                  "gate": gate},
    )  # fmt: skip


def _running_again(flow_run_id: str) -> None:
    """After a pause timed out, put the run back to Running so it finishes normally (the reject is recorded
    by this run). Left Paused, the server would fail the run when it completes."""
    if not flow_run_id:
        return
    from prefect.client.orchestration import get_client
    from prefect.states import Running

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run_id, Running(), force=True)
