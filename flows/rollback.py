"""The rollback flow: find the target -> move `champion` back -> record the move -> announce.

The audit trail is the audit log (Action.ROLLBACK), numbered version tags, an event and an artifact.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from pydantic import BaseModel

from adapters.prefect_lock import model_lock
from evergreen.artifacts import artifact_key
from evergreen.events import Event
from tasks.announce import emit_event, publish_markdown
from tasks.rollback import RollbackError, move_champion_back, record_rollback, rollback_target

__all__ = ["RollbackError", "RollbackOutcome", "rollback"]


class RollbackOutcome(BaseModel):
    model: str
    from_version: str
    to_version: str
    reason: str
    at: str
    forced: bool = False
    trigger_event_id: str | None = None  # the event that started the run (e.g. champion.regressed)


@flow(name="rollback", log_prints=False)
def rollback(
    model: str,
    to_version: str | None = None,
    reason: str = "manual rollback",
    force: bool = False,
    from_version: str | None = None,
    trigger_event_id: str | None = None,
) -> dict[str, Any]:
    """Point `champion` at `to_version` (default: the nearest earlier champion that passed a gate).

    A target that never passed a gate needs `force=True`; the audit entry then says forced=true.
    `from_version` makes it a compare-and-swap: refused unless `from_version` is still the champion (the
    watch's rollback automation passes the regressed version, so a late or repeated event moves nothing).
    `trigger_event_id` (the automation's event) is recorded in the audit entry and the event.
    """
    # The retrain's per-model lock: a rollback never interleaves with a promotion's score -> alias.
    with model_lock(model):
        plan = rollback_target(model, to_version, force, expected_current=from_version or None)
        at = move_champion_back(model, plan, reason)
        record_rollback(model, plan, reason, at, trigger_event_id=trigger_event_id)
    out = RollbackOutcome(
        model=model,
        from_version=plan.current,
        to_version=plan.target,
        reason=reason,
        at=at,
        forced=plan.forced,
        trigger_event_id=trigger_event_id or None,
    )
    emit_event(Event.MODEL_ROLLED_BACK, model, out.model_dump())
    forced = " (forced: the target never passed a gate)" if plan.forced else ""
    publish_markdown(
        artifact_key("rollback", model),
        f"# Rollback: {model}\n\n`champion` moved from v{plan.current} to v{plan.target} at {at}{forced}."
        f"\n\nReason: {reason}\n",
        f"{model}: champion v{plan.current} -> v{plan.target}",
    )
    get_run_logger().info("rolled %s back from v%s to v%s%s", model, plan.current, plan.target, forced)
    return out.model_dump()
