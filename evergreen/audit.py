"""Audit records: one immutable entry per decision (ingest, reject, promote, skip, rollback, approval...).

Pure: building entries, their idempotency keys, who the actor is, and how an entry maps to the
tags of the MLflow run that stores it (adapters/audit_log.py does the I/O). See docs/audit.md.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

logger = logging.getLogger(__name__)

MODEL_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"  # the spec's model-name rule; also safe inside MLflow filters
TAG_PREFIX = "evergreen.audit."
ENTRY_TAG = f"{TAG_PREFIX}entry"
ENTRY_ARTIFACT = "entry.json"
# Some MLflow backends cap tag values at 5000 characters (MLflow 3 allows 8000 and silently truncates
# above that): a larger entry goes to an artifact instead of a tag that could be cut short.
ENTRY_TAG_LIMIT = 5000
REASON_TAG_LIMIT = 500


class Action(StrEnum):
    """What was decided. Values are what `evergreen history --action` and the run tags use."""

    INGEST = "ingest"
    REJECT_BATCH = "reject-batch"
    PROMOTE = "promote"
    REJECT_MODEL = "reject-model"
    SKIP = "skip"
    ROLLBACK = "rollback"
    APPROVE = "approve"
    RECOVER = "recover"  # a later run repaired a half-done promotion (an alias move of its own)
    ORPHAN = "orphan"  # a later run marked a gate-passed version that never got the alias
    SHADOW = "shadow"  # a gate-passed challenger became `shadow` (promotion.mode: shadow)
    RETIRE = "retire"  # a shadow lost its side-by-side comparison and left the release path


class AuditEntry(BaseModel):
    """One decision. Entries are created, never updated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    time: datetime = Field(description="When the decision was recorded (UTC).")
    model: str = Field(pattern=MODEL_NAME_PATTERN)
    action: Action
    actor: str = Field(min_length=1, description="Who decided: see resolve_actor for the rules.")
    versions: dict[str, str | None] = Field(
        default_factory=dict, description="e.g. version, previous_champion, from_version, to_version."
    )
    reason: str = ""
    evidence: dict[str, Any] = Field(
        default_factory=dict,
        description="References: run ids, flow_run_id, trigger_event_id, gate summary, data_version.",
    )
    idempotency_key: str = Field(min_length=1, max_length=200)

    @field_validator("time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("time must be timezone-aware")
        return value.astimezone(UTC)

    @field_validator("versions", mode="before")
    @classmethod
    def _versions_as_str(cls, value: Any) -> Any:
        # Versions arrive as ints or strings from MLflow; store one form so keys and filters agree.
        if isinstance(value, Mapping):
            return {str(k): None if v is None else str(v) for k, v in value.items()}
        return value

    def record(self) -> dict[str, Any]:
        """The entry as plain JSON data (what `evergreen history --json` prints)."""
        return self.model_dump(mode="json")


def check_model_name(model: str) -> str:
    """Return `model` if it is a valid model name, else raise ValueError."""
    import re

    if not re.fullmatch(MODEL_NAME_PATTERN, model):
        raise ValueError(f"invalid model name {model!r}: use lowercase letters, digits, '-' and '_'")
    return model


def parse_action(value: str) -> Action:
    """An Action from its string value, with a ValueError listing the valid ones."""
    try:
        return Action(value)
    except ValueError:
        valid = ", ".join(a.value for a in Action)
        raise ValueError(f"unknown action {value!r}: expected one of {valid}") from None


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def derive_key(
    model: str,
    action: Action | str,
    *,
    actor: str,
    versions: Mapping[str, Any] | None = None,
    reason: str = "",
    evidence: Mapping[str, Any] | None = None,
) -> str:
    """A stable key for a decision: a hash of everything but the time.

    A retried write of the same decision (same flow run, same content) gets the same key, so it is
    stored once. Two real decisions differ in their evidence (each flow run records its
    flow_run_id), so they get different keys. Pass an explicit key for stronger rules
    (e.g. "promote/<model>/v<version>": one promotion record per version, across runs).
    """
    body = {
        "model": model,
        "action": str(action),
        "actor": actor,
        "versions": {str(k): None if v is None else str(v) for k, v in (versions or {}).items()},
        "reason": reason,
        "evidence": evidence or {},
    }
    digest = hashlib.sha256(_canonical(body).encode()).hexdigest()[:32]
    return f"{action}/{model}/{digest}"


def new_entry(
    model: str,
    action: Action | str,
    *,
    actor: str,
    versions: Mapping[str, Any] | None = None,
    reason: str = "",
    evidence: Mapping[str, Any] | None = None,
    key: str | None = None,
    now: datetime | None = None,
) -> AuditEntry:
    """Build an entry; the key is `key` or derive_key(...) over the same fields."""
    act = parse_action(str(action))
    ev = json.loads(_canonical(dict(evidence or {})))  # JSON-safe now, so the stored form is this form
    return AuditEntry(
        time=now or datetime.now(UTC),
        model=check_model_name(model),
        action=act,
        actor=actor,
        versions=dict(versions or {}),
        reason=reason,
        evidence=ev,
        idempotency_key=key
        or derive_key(model, act, actor=actor, versions=versions, reason=reason, evidence=ev),
    )


# --- who decided -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOrigin:
    """Facts about the Prefect run making the decision, gathered by the caller (tasks/audit.py)."""

    flow_run_id: str | None = None
    flow: str | None = None
    deployment: str | None = None  # deployment name, when the run came from a deployment
    automation: str | None = None  # automation name, when an automation created the run

    def evidence(self) -> dict[str, str]:
        """The non-empty facts, for the entry's evidence (kept even when another actor rule wins)."""
        return {
            k: v
            for k, v in {
                "flow_run_id": self.flow_run_id,
                "flow": self.flow,
                "deployment": self.deployment,
                "automation": self.automation,
            }.items()
            if v
        }


def os_login() -> str | None:
    """The OS login name, or None where there is none (e.g. a container uid without a passwd entry)."""
    try:
        return getpass.getuser() or None
    except Exception:  # noqa: BLE001  getpass raises OSError/KeyError variants by platform
        return None


def resolve_actor(
    env: Mapping[str, str],
    origin: RunOrigin | None = None,
    login: Callable[[], str | None] = os_login,
    authenticated: str | None = None,
) -> str:
    """Who made a decision, first rule that applies:

    0. `authenticated`: the identity an auth-enabled MLflow server verified -> "mlflow-user:<name>"
       (docs/security.md); a name the client declares cannot override it;
    1. `EVERGREEN_ACTOR`, verbatim (an operator or CI job naming itself);
    2. the claimed identity: `MLFLOW_TRACKING_USERNAME` -> "mlflow-user:<name>";
    3. the run's origin: "automation:<name>" if an automation created the run, else
       "deployment:<flow>/<name>" if it came from a deployment (schedule or manual deployment run);
    4. "user:<os login>", or "user:unknown" when there is none.
    """
    if authenticated and authenticated.strip():
        return f"mlflow-user:{authenticated.strip()}"
    explicit = env.get("EVERGREEN_ACTOR", "").strip()
    if explicit:
        return explicit
    username = env.get("MLFLOW_TRACKING_USERNAME", "").strip()
    if username:
        return f"mlflow-user:{username}"
    if origin is not None and origin.automation:
        return f"automation:{origin.automation}"
    if origin is not None and origin.deployment:
        return f"deployment:{origin.flow or '?'}/{origin.deployment}"
    return f"user:{login() or 'unknown'}"


# --- entries <-> MLflow run tags ---------------------------------------------------------------


def entry_json(entry: AuditEntry) -> str:
    return entry.model_dump_json()


def run_tags(entry: AuditEntry) -> tuple[dict[str, str], bool]:
    """The tags of the run storing `entry`, and whether the full JSON fits in a tag.

    Key fields are always tags (filterable in the MLflow UI and search API); the full entry is the
    `evergreen.audit.entry` tag when it fits, else the caller writes it as the `entry.json` artifact.
    """
    full = entry_json(entry)
    fits = len(full) <= ENTRY_TAG_LIMIT
    tags = {
        f"{TAG_PREFIX}model": entry.model,
        f"{TAG_PREFIX}action": entry.action.value,
        f"{TAG_PREFIX}actor": entry.actor[:250],
        f"{TAG_PREFIX}idempotency_key": entry.idempotency_key,
        f"{TAG_PREFIX}time": entry.time.isoformat(),
        f"{TAG_PREFIX}reason": entry.reason[:REASON_TAG_LIMIT],
        f"{TAG_PREFIX}versions": _canonical(entry.versions)[:1000],
    }
    if fits:
        tags[ENTRY_TAG] = full
    else:
        tags[f"{TAG_PREFIX}entry_artifact"] = ENTRY_ARTIFACT
    return tags, fits


def entry_from_tags(tags: Mapping[str, str], artifact_text: str | None = None) -> AuditEntry:
    """Rebuild an entry from its run: the full JSON (tag or artifact), else the key-field tags.

    The fallback only happens when a large entry's artifact upload failed after the run was created;
    the evidence then says so instead of the entry disappearing from the history.
    """
    full = tags.get(ENTRY_TAG) or artifact_text
    if full:
        return AuditEntry.model_validate_json(full)
    return AuditEntry(
        time=datetime.fromisoformat(tags[f"{TAG_PREFIX}time"]),
        model=tags[f"{TAG_PREFIX}model"],
        action=parse_action(tags[f"{TAG_PREFIX}action"]),
        actor=tags[f"{TAG_PREFIX}actor"],
        versions=json.loads(tags.get(f"{TAG_PREFIX}versions") or "{}"),
        reason=tags.get(f"{TAG_PREFIX}reason", ""),
        evidence={"unavailable": f"{ENTRY_ARTIFACT} missing; key fields from run tags"},
        idempotency_key=tags[f"{TAG_PREFIX}idempotency_key"],
    )


def history(
    stored: Iterable[tuple[str, AuditEntry]], *, action: Action | None = None, limit: int | None = None
) -> list[AuditEntry]:
    """Entries oldest first, one per idempotency key, optionally one action, the last `limit` of them.

    `stored` is (run_id, entry) per stored run. Two runs with one key only arise when two writes of one
    decision raced (or a create was retried by the HTTP client after a lost response): the earliest
    (time, then run id) is the entry, so every reader sees the same one and nothing is ever deleted.
    """
    first: dict[str, tuple[datetime, str, AuditEntry]] = {}
    for run_id, entry in stored:
        seen = first.get(entry.idempotency_key)
        if seen is None or (entry.time, run_id) < (seen[0], seen[1]):
            first[entry.idempotency_key] = (entry.time, run_id, entry)
    ordered = [e for _, _, e in sorted(first.values(), key=lambda t: (t[0], t[1]))]
    if action is not None:
        ordered = [e for e in ordered if e.action == action]
    if limit is not None:
        ordered = ordered[-limit:] if limit > 0 else []
    return ordered
