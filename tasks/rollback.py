"""Rollback tasks: choose the target (walking back through champion history) and move `champion` there."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from adapters import mlflow_registry as registry
from evergreen.settings import get_settings


class RollbackError(ValueError):
    """The rollback target does not exist or is already the champion."""


@task(cache_policy=NO_CACHE)  # its errors are answers (no such version), not transient: no retries
def rollback_target(model: str, to_version: str | None) -> tuple[str, str]:
    """(current champion, target): `to_version`, or by default the version the champion replaced."""
    settings = get_settings()
    current = registry.get_champion(registry.client(settings), model)
    if current is None:
        raise RollbackError(f"{model} has no champion to roll back")
    target = to_version or current.tags.get("replaced_version") or ""
    if not target:
        raise RollbackError(f"{model} v{current.version} replaced no earlier champion; pass --to VERSION")
    if target == current.version:
        raise RollbackError(f"{model} v{target} is already the champion")
    if not registry.has_version(settings, model, target):
        raise RollbackError(f"{model} has no version {target}")
    return current.version, target


@task(cache_policy=NO_CACHE)
def move_champion_back(model: str, current: str, target: str, reason: str) -> str:
    """Move `champion` to `target` and tag both versions with the move; returns when it happened."""
    settings = get_settings()
    at = registry.set_alias(
        settings, model, registry.CHAMPION, target, reason=f"rollback: {reason}", previous=current
    )
    registry.tag_version(settings, model, target, {"rolled_back_from": current})
    registry.tag_version(settings, model, current, {"rolled_back_at": at, "rollback_reason": reason})
    return at
