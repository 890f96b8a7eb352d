"""Rollback tasks: choose the target (walking back through champion history) and move `champion` there.

Rules (issue 9 case 8):
- A target must have passed a gate (tag gate_passed=true and a promotion record or a passed gate
  decision); anything else needs `force`, which the audit entry records (evidence forced=true).
- The default target walks back the chain of `replaced_version` tags written at promotion. Rollback
  never rewrites those tags, so rolling back twice goes two steps back instead of toggling.
- The move is recorded as numbered per-event tags (`rollback.<n>.*`) and an audit entry; the
  target's promotion tags (promoted_at, promotion_reason, replaced_version) are kept as they were.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from adapters import mlflow_registry as registry
from adapters import mlflow_versions as versions
from evergreen.audit import Action
from evergreen.settings import get_settings
from tasks.audit import record_decision

TAG_PREFIX = "rollback."


class RollbackError(ValueError):
    """The rollback target does not exist, is already the champion, or never passed a gate."""


@dataclass(frozen=True)
class RollbackPlan:
    current: str
    target: str
    forced: bool  # the target did not pass a gate and --force allowed it
    gate_passed: bool


def passed_gate(tags: dict[str, str]) -> bool:
    """Whether a version passed a gate: gate_passed=true plus a promotion record or a passed decision.

    A version a person rejected (or whose approval timed out), or a shadow retired on live rows, passed the
    gate but not the release after it: not a target without --force."""
    if tags.get("gate_passed") != "true":
        return False
    if tags.get("promoted_at"):
        return True
    if tags.get("approval_status") in {"rejected", "timed_out"} or tags.get("retired") == "true":
        return False
    try:
        decision = json.loads(tags.get("gate_decision") or "{}")
    except ValueError:
        return False
    return isinstance(decision, dict) and decision.get("passed") is True


def _walk_back(model: str, current: str, tags: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The nearest earlier champion (following replaced_version) that still exists and passed a gate."""
    settings = get_settings()
    seen = {current}
    previous = tags.get("replaced_version") or ""
    skipped: list[str] = []
    while previous and previous not in seen:
        seen.add(previous)
        prev_tags = versions.version_tags(settings, model, previous)
        if prev_tags is not None and passed_gate(prev_tags):
            return previous, prev_tags
        skipped.append(previous)
        previous = (prev_tags or {}).get("replaced_version") or ""
    note = f" (skipped v{', v'.join(skipped)}: deleted or never passed a gate)" if skipped else ""
    raise RollbackError(
        f"{model} v{current} has no earlier champion that passed a gate{note}; pass --to VERSION"
    )


@task(cache_policy=NO_CACHE)  # its errors are answers (no such version), not transient: no retries
def rollback_target(
    model: str, to_version: str | None, force: bool = False, expected_current: str | None = None
) -> RollbackPlan:
    """Where `champion` goes: `to_version`, or by default the nearest earlier champion that passed a gate.

    `expected_current`: refuse unless the champion is still that version (compare-and-swap)."""
    settings = get_settings()
    current = registry.get_champion(registry.client(settings), model)
    if current is None:
        raise RollbackError(f"{model} has no champion to roll back")
    if expected_current is not None and current.version != str(expected_current):
        raise RollbackError(
            f"{model} champion is v{current.version}, not v{expected_current}: nothing rolled back"
        )
    if to_version is None:
        target, tags = _walk_back(model, current.version, current.tags)
    else:
        target = str(to_version)
        if target == current.version:
            raise RollbackError(f"{model} v{target} is already the champion")
        found = versions.version_tags(settings, model, target)
        if found is None:
            raise RollbackError(f"{model} has no version {target}")
        tags = found
    ok = passed_gate(tags)
    if not ok and not force:
        raise RollbackError(
            f"{model} v{target} never passed a gate and its release (gate_passed={tags.get('gate_passed', 'unset')}, "
            f"approval_status={tags.get('approval_status', 'unset')}, retired={tags.get('retired', 'unset')}); "
            "pass --force to roll back to it anyway (audited)"
        )
    return RollbackPlan(current=current.version, target=target, forced=not ok, gate_passed=ok)


def _next_seq(tags: dict[str, str]) -> int:
    """1 + the highest rollback event number already on a version (tags are never overwritten)."""
    nums = [int(k.split(".")[1]) for k in tags if k.startswith(TAG_PREFIX) and k.split(".")[1].isdigit()]
    return max(nums, default=0) + 1


def _event_tags(tags: dict[str, str] | None, event: dict[str, object]) -> dict[str, str]:
    seq = _next_seq(tags or {})
    return {f"{TAG_PREFIX}{seq}.{k}": str(v) for k, v in event.items()}


@task(cache_policy=NO_CACHE)
def move_champion_back(model: str, plan: RollbackPlan, reason: str) -> str:
    """Move `champion` to the target and tag both versions with the move; returns when it happened."""
    settings = get_settings()
    at = datetime.now(UTC).isoformat()
    versions.point_alias(settings, model, registry.CHAMPION, plan.target)
    event = {"at": at, "reason": reason, "forced": str(plan.forced).lower()}
    target_tags = versions.version_tags(settings, model, plan.target)
    current_tags = versions.version_tags(settings, model, plan.current)
    # Latest-move tags (overwritten by the next move) plus numbered per-event tags (kept forever).
    registry.tag_version(
        settings,
        model,
        plan.target,
        {"rolled_back_from": plan.current, **_event_tags(target_tags, {"from": plan.current, **event})},
    )
    registry.tag_version(
        settings,
        model,
        plan.current,
        {
            "rolled_back_at": at,
            "rollback_reason": reason,
            **_event_tags(current_tags, {"to": plan.target, **event}),
        },
    )
    return at


def record_rollback(
    model: str, plan: RollbackPlan, reason: str, at: str, trigger_event_id: str | None = None
) -> dict[str, Any]:
    """The audit entry for the move (actor resolved by tasks.audit; forced rollbacks say so)."""
    trigger = {"trigger_event_id": trigger_event_id} if trigger_event_id else {}
    return record_decision(
        model,
        Action.ROLLBACK,
        versions={"from_version": plan.current, "to_version": plan.target},
        reason=reason,
        evidence={"forced": plan.forced, "gate_passed": plan.gate_passed, "at": at, **trigger},
    )
