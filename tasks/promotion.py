"""Promotion tasks that stay true under faults (issue 9 cases 5 and 6).

- `recover`: at the start of a retrain, inside the model's lock, repair what a crashed run left:
  orphan versions (gate passed, never got the alias) are tagged `orphaned=true`, not promoted; a
  champion without its promotion record gets it back from the audit log or the registry history.
- `register_once`: at most one version per retrain, even when MLflow's client retries the create.
- `promote_checked`: compare-and-swap on `champion`: if it moved since scoring, the run does not
  promote (status rejected, detail says why) and a re-run re-scores against the new champion.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from adapters import audit_log
from adapters import mlflow_promotion as promotion
from adapters import mlflow_registry as registry
from evergreen.audit import Action
from evergreen.faults import fault_point
from evergreen.gate import GateDecision
from evergreen.settings import get_settings
from tasks.audit import record_decision

Status = Literal["promoted", "rejected"]


@task(cache_policy=NO_CACHE)
def recover(model: str, retrain_key: str) -> dict[str, Any]:
    """Converge after a crash: tag orphans, complete the champion's promotion record (audited)."""
    settings, log = get_settings(), get_run_logger()
    champ = registry.get_champion(registry.client(settings), model)
    current = None if champ is None else champ.version
    orphans = promotion.find_orphans(settings, model, current, retrain_key)
    for v in orphans:
        log.warning("%s v%s passed its gate but never got the alias: tagging it orphaned", model, v)
        why = "its retrain stopped before the alias move"
        registry.tag_version(settings, model, v, {"orphaned": "true", "orphaned_reason": why})
        record_decision(
            model,
            Action.ORPHAN,
            versions={"version": v, "champion": current},
            reason=f"v{v} passed its gate but {why}; left as is, never promoted",
            evidence={"retrain_key": retrain_key},
            key=f"orphan/{model}/v{v}",
        )
    missing = promotion.champion_missing_record(settings, model)
    repaired = _complete_record(model, missing) if missing is not None else None
    return {"orphaned": orphans, "repaired": repaired}


def _previous_from_history(model: str, missing: promotion.MissingRecord) -> tuple[str | None, str | None]:
    """(replaced version, promoted_at) from the audit log, else the gate decision, else history."""
    settings = get_settings()
    try:
        for entry in reversed(audit_log.read(settings, model, action=Action.PROMOTE)):
            if entry.versions.get("version") == missing.version:
                return entry.versions.get("previous_champion"), entry.time.isoformat()
    except Exception as exc:  # noqa: BLE001  the registry history below still answers
        get_run_logger().warning("audit log unreadable while recovering %s: %s", model, exc)
    try:
        judged = json.loads(missing.tags.get("gate_decision") or "{}").get("champion_version")
    except json.JSONDecodeError:
        judged = None
    return (judged or missing.previous), missing.tags.get("champion_since")


def _complete_record(model: str, missing: promotion.MissingRecord) -> str:
    settings = get_settings()
    previous, at = _previous_from_history(model, missing)
    at = at or datetime.now(UTC).isoformat()
    get_run_logger().warning(
        "%s champion v%s lacks its promotion record: completing it (replaced %s)",
        model,
        missing.version,
        previous or "none",
    )
    tags = {"promoted_at": at, "replaced_version": previous or "", "champion_since": at}
    tags.setdefault("promotion_reason", missing.tags.get("promotion_reason") or "recovered")
    registry.tag_version(settings, model, missing.version, tags)
    if previous and previous != missing.version:
        registry.tag_version(settings, model, previous, {"champion_until": at})
    record_decision(
        model,
        Action.RECOVER,
        versions={"from_version": previous, "to_version": missing.version},
        reason="champion lacked its promotion record (a run stopped after moving the alias)",
        evidence={"promoted_at": at, "source": "audit log or registry history"},
    )
    return missing.version


@task(cache_policy=NO_CACHE)
def register_once(model: str, logged: registry.LoggedRun, tags: dict[str, str], description: str) -> str:
    """Every trained model becomes a version, once per retrain (keyed by the `retrain_key` tag)."""
    version = promotion.register_once(get_settings(), model, logged, tags, description[:1000])
    fault_point("retrain:after-register")
    return version


@task(cache_policy=NO_CACHE)
def promote_checked(
    model: str, version: str, verdict: GateDecision, previous: str | None, reason: str
) -> tuple[Status, str, str | None]:
    """Move `champion` (passed, and the champion is still `previous`) or `challenger`.

    Returns (status, detail, the champion afterwards).

    On an error, undo the registration and restore the champion, then raise (never half-register).
    """
    settings = get_settings()
    try:
        if not verdict.passed:
            registry.set_alias(settings, model, registry.CHALLENGER, version, reason=reason, previous=None)
            registry.tag_version(settings, model, version, {"rejection_reason": verdict.summary[:5000]})
            return "rejected", verdict.summary, previous
        now = registry.get_champion(registry.client(settings), model)
        current = None if now is None else now.version
        if current != previous:
            note = (
                f"champion changed from v{previous or 'none'} to v{current or 'none'} during this run; "
                "re-run to re-score"
            )
            registry.tag_version(settings, model, version, {"rejection_reason": note})
            return "rejected", note, current
        registry.set_alias(settings, model, registry.CHAMPION, version, reason=reason, previous=previous)
        return "promoted", verdict.summary, version
    except Exception:
        get_run_logger().exception(
            "alias update failed; removing v%s and restoring champion %s", version, previous
        )
        registry.undo_registration(settings, model, version, previous)
        raise
