"""The rollback flow: move `champion` back to an earlier version, with an audit trail (tags + event)."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from pydantic import BaseModel

from adapters import mlflow_registry as model_registry
from evergreen.settings import get_settings
from tasks.steps import emit_event, publish_markdown


class RollbackError(ValueError):
    """The rollback target does not exist or is already the champion."""


class RollbackOutcome(BaseModel):
    model: str
    from_version: str
    to_version: str
    reason: str
    at: str


@flow(name="rollback", log_prints=False)
def rollback(model: str, to_version: str | None = None, reason: str = "manual rollback") -> dict[str, Any]:
    """Point `champion` at `to_version` (default: the version the current champion replaced)."""
    log = get_run_logger()
    settings = get_settings()
    cl = model_registry.client(settings)
    current = model_registry.get_champion(cl, model)
    if current is None:
        raise RollbackError(f"{model} has no champion to roll back")
    target = to_version or current.tags.get("replaced_version") or ""
    if not target:
        raise RollbackError(f"{model} v{current.version} replaced no earlier champion; pass --to VERSION")
    if target == current.version:
        raise RollbackError(f"{model} v{target} is already the champion")
    from mlflow.exceptions import MlflowException

    try:
        cl.get_model_version(model, target)
    except MlflowException:
        raise RollbackError(f"{model} has no version {target}") from None
    at = model_registry.set_alias(
        settings, model, model_registry.CHAMPION, target, reason=f"rollback: {reason}", previous=current.version
    )
    model_registry.tag_version(settings, model, target, {"rolled_back_from": current.version})
    model_registry.tag_version(settings, model, current.version, {"rolled_back_at": at, "rollback_reason": reason})
    out = RollbackOutcome(model=model, from_version=current.version, to_version=target, reason=reason, at=at)
    emit_event("evergreen.model.rolled-back", model, out.model_dump())
    publish_markdown(
        f"rollback-{model}".lower().replace("_", "-"),
        f"# Rollback: {model}\n\n`champion` moved from v{current.version} to v{target} at {at}.\n\nReason: {reason}\n",
        f"{model}: champion v{current.version} -> v{target}",
    )
    log.info("rolled %s back from v%s to v%s", model, current.version, target)
    return out.model_dump()
