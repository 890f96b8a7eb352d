"""The rollback flow: find the target -> move `champion` back -> record the move -> announce.

The audit trail is version tags (MLflow keeps no alias history), an event and an artifact.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from pydantic import BaseModel

from evergreen.artifacts import artifact_key
from evergreen.events import Event
from tasks.announce import emit_event, publish_markdown
from tasks.rollback import RollbackError, move_champion_back, rollback_target

__all__ = ["RollbackError", "RollbackOutcome", "rollback"]


class RollbackOutcome(BaseModel):
    model: str
    from_version: str
    to_version: str
    reason: str
    at: str


@flow(name="rollback", log_prints=False)
def rollback(model: str, to_version: str | None = None, reason: str = "manual rollback") -> dict[str, Any]:
    """Point `champion` at `to_version` (default: the version the current champion replaced)."""
    current, target = rollback_target(model, to_version)
    at = move_champion_back(model, current, target, reason)
    out = RollbackOutcome(model=model, from_version=current, to_version=target, reason=reason, at=at)
    emit_event(Event.MODEL_ROLLED_BACK, model, out.model_dump())
    publish_markdown(
        artifact_key("rollback", model),
        f"# Rollback: {model}\n\n`champion` moved from v{current} to v{target} at {at}.\n\nReason: {reason}\n",
        f"{model}: champion v{current} -> v{target}",
    )
    get_run_logger().info("rolled %s back from v%s to v%s", model, current, target)
    return out.model_dump()
