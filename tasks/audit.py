"""Recording decisions in the audit log (a task over adapters.audit_log; see docs/audit.md).

Retries are safe: the entry's idempotency key does not depend on the time, so a retried write finds
the stored entry instead of adding a second one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from adapters import audit_log, mlflow_identity
from evergreen.audit import Action, AuditEntry, RunOrigin, new_entry, resolve_actor
from evergreen.settings import get_settings

logger = logging.getLogger(__name__)


def run_origin() -> RunOrigin:
    """Facts about the current Prefect flow run (all None outside one); never raises."""
    try:
        from prefect.context import FlowRunContext

        ctx = FlowRunContext.get()
        if ctx is None or ctx.flow_run is None:
            return RunOrigin()
        fr = ctx.flow_run
        by = fr.created_by
        automation = by.display_value if by is not None and (by.type or "").upper() == "AUTOMATION" else None
        return RunOrigin(
            flow_run_id=str(fr.id),
            flow=ctx.flow.name if ctx.flow is not None else None,
            deployment=_deployment_name() if fr.deployment_id else None,
            automation=automation or None,
        )
    except Exception as exc:  # noqa: BLE001  the actor falls back to the login; never block a decision
        logger.warning("audit: could not read the flow run's origin (%s)", exc)
        return RunOrigin()


def _deployment_name() -> str | None:
    from prefect.runtime import deployment

    name = deployment.name
    return str(name) if name else None


def build_entry(
    model: str,
    action: Action | str,
    *,
    versions: Mapping[str, Any] | None = None,
    reason: str = "",
    evidence: Mapping[str, Any] | None = None,
    key: str | None = None,
) -> AuditEntry:
    """An entry with the actor and run origin filled in (evidence keys given by the caller win)."""
    origin = run_origin()
    verified = mlflow_identity.authenticated_user(get_settings().tracking_uri)
    declared = os.environ.get("EVERGREEN_ACTOR", "").strip()
    # With auth on, the verified identity is the actor; a declared name is kept as evidence only.
    claim = {"declared_actor": declared} if verified and declared else {}
    return new_entry(
        model,
        action,
        actor=resolve_actor(os.environ, origin, authenticated=verified),
        versions=versions,
        reason=reason,
        evidence={**origin.evidence(), **claim, **dict(evidence or {})},
        key=key,
    )


def _transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only when the server was unavailable (bad input or a deleted experiment will not heal)."""
    try:
        state.result()
    except audit_log.AuditLogUnavailable:
        return True
    except Exception:  # noqa: BLE001
        return False
    return False


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[2, 10, 30], retry_condition_fn=_transient)
def record_decision(
    model: str,
    action: Action | str,
    *,
    versions: Mapping[str, Any] | None = None,
    reason: str = "",
    evidence: Mapping[str, Any] | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """Append one decision to the audit log; returns the entry as JSON data plus `run_id` and `created`
    (False when a retry found the entry already stored: the stored one keeps its original time)."""
    entry = build_entry(model, action, versions=versions, reason=reason, evidence=evidence, key=key)
    stored = audit_log.append(get_settings(), entry)
    return {**entry.record(), "run_id": stored.run_id, "created": stored.created}
