"""MLflow Model Registry I/O for safe promotion: idempotent registration and crash recovery.

- Registration is keyed by the retrain's idempotency key (tag `retrain_key`, the flow-run id): a
  version already registered under the key is reused, and duplicates that a client retry of
  `model-versions/create` produced are deleted, keeping the lowest number.
- Recovery finds what a crash left behind: versions that passed the gate but never got the alias
  (orphans), and a champion whose promotion record (promoted_at, replaced_version) was never written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from adapters.mlflow_registry import CHAMPION, LoggedRun, client, register_version
from evergreen.settings import Settings

logger = logging.getLogger(__name__)

KEY_TAG = "retrain_key"
PROMOTION_RECORD = ("promoted_at", "replaced_version")


def _versions(cl: Any, name: str, where: str = "") -> list[Any]:
    query = f"name='{name}'" + (f" and {where}" if where else "")
    return sorted(cl.search_model_versions(query), key=lambda mv: int(mv.version))


def versions_with_key(settings: Settings, name: str, key: str) -> list[str]:
    """Version numbers registered under idempotency key `key`, lowest first."""
    return [str(mv.version) for mv in _versions(client(settings), name, f"tags.{KEY_TAG}='{key}'")]


def keep_lowest(settings: Settings, name: str, key: str) -> str | None:
    """Delete all but the lowest version registered under `key` (a retried create made them)."""
    found = versions_with_key(settings, name, key)
    for extra in found[1:]:
        logger.warning("deleting v%s of %s: a duplicate registration of retrain %s", extra, name, key)
        client(settings).delete_model_version(name, extra)
    return found[0] if found else None


def register_once(
    settings: Settings, name: str, logged: LoggedRun, tags: dict[str, str], description: str
) -> str:
    """Register at most one version per `tags[retrain_key]`: reuse it if present, dedupe after create."""
    key = tags[KEY_TAG]
    existing = keep_lowest(settings, name, key)
    if existing is not None:
        logger.info("retrain %s already registered %s v%s; reusing it", key, name, existing)
        return existing
    register_version(settings, name, logged, tags=tags, description=description)
    kept = keep_lowest(settings, name, key)
    if kept is None:  # the search index lags the create only on exotic stores; treat as a failure
        raise RuntimeError(f"registered {name} for retrain {key} but cannot find the version")
    return kept


def _is_orphan(mv: Any, champion: int | None, key: str) -> bool:
    tags = mv.tags
    return (
        tags.get("gate_passed") == "true"
        and not tags.get("promoted_at")
        and not tags.get("rejection_reason")
        and tags.get("orphaned") != "true"
        and tags.get(KEY_TAG) != key
        and (champion is None or int(mv.version) > champion)
        and not mv.aliases
    )


def find_orphans(settings: Settings, name: str, champion: str | None, key: str) -> list[str]:
    """Versions newer than the champion that passed the gate but never got the alias (crash leftovers)."""
    champ = int(champion) if champion else None
    return [str(mv.version) for mv in _versions(client(settings), name) if _is_orphan(mv, champ, key)]


@dataclass(frozen=True)
class MissingRecord:
    """A champion without its promotion record, and what the registry history says it replaced."""

    version: str
    tags: dict[str, str]
    previous: str | None


def champion_missing_record(settings: Settings, name: str) -> MissingRecord | None:
    """The champion when its promoted_at/replaced_version tags are missing (alias moved, tags lost)."""
    cl = client(settings)
    from mlflow.exceptions import MlflowException

    try:
        champ = cl.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    tags = dict(champ.tags)
    if all(k in tags for k in PROMOTION_RECORD):
        return None
    # The champion it replaced: the most recently promoted other version (its promoted_at is newest).
    others = [mv for mv in _versions(cl, name) if str(mv.version) != str(champ.version)]
    promoted = [mv for mv in others if mv.tags.get("promoted_at")]
    prev = max(promoted, key=lambda mv: mv.tags["promoted_at"], default=None)
    return MissingRecord(str(champ.version), tags, None if prev is None else str(prev.version))
