"""The audit log's storage: one MLflow run per entry in the `EVERGREEN_AUDIT_EXPERIMENT` experiment.

It lives on the tracking server that holds the model registry, so it is exactly as durable and as
shared as the registry it audits (Prefect drops events after 7 days by default). Runs are only
created, never updated. A write first looks the idempotency key up, so a retried write returns the
stored entry; readers keep the earliest run per key, so even two racing writes read back as one.

A write that cannot reach MLflow still raises, but first leaves the entry in a local spool
(`EVERGREEN_HOME/audit-spool/`); the next write or read that reaches MLflow stores the spooled entries
first, oldest first. So a decision taken while MLflow was down (a quarantined batch, say) is not lost.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evergreen.audit import (
    ENTRY_ARTIFACT,
    TAG_PREFIX,
    Action,
    AuditEntry,
    check_model_name,
    entry_from_tags,
    entry_json,
    history,
    run_tags,
)
from evergreen.settings import Settings

logger = logging.getLogger(__name__)

PAGE = 1000


class AuditLogError(RuntimeError):
    """The audit log cannot be used as configured (e.g. its experiment was deleted)."""


class AuditLogUnavailable(AuditLogError):
    """The audit log's MLflow server could not be reached or failed; the message names the server."""


@dataclass(frozen=True)
class Appended:
    run_id: str
    created: bool  # False: an entry with this idempotency key was already stored


def _client(settings: Settings) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=settings.tracking_uri)


@contextlib.contextmanager
def _unavailable_as_error(settings: Settings, doing: str) -> Iterator[None]:
    """MLflow/network failures become one AuditLogUnavailable line naming the tracking server."""
    import requests
    from mlflow.exceptions import MlflowException

    try:
        yield
    except (MlflowException, requests.RequestException, OSError) as exc:
        raise AuditLogUnavailable(
            f"cannot {doing} the audit log: MLflow at {settings.tracking_uri} {_why(exc)}"
        ) from exc


def _why(exc: Exception) -> str:
    """A short cause: urllib3's "Max retries exceeded ... NewConnectionError(...)" is 400+ characters."""
    text = str(exc)
    if "NewConnectionError" in text or "Connection refused" in text:
        return "is unreachable (connection refused)"
    if "timed out" in text.lower() or "Timeout" in text:
        return "is unreachable (timed out)"
    first = (text.strip().splitlines() or [type(exc).__name__])[0]
    return f"failed: {first[:200]}"


def _experiment_id(cl: Any, settings: Settings, *, create: bool) -> str | None:
    """The audit experiment's id; created on first write (None on read when it does not exist yet)."""
    from mlflow.exceptions import MlflowException

    name = settings.audit_experiment
    exp = cl.get_experiment_by_name(name)
    if exp is None and create:
        try:
            return str(cl.create_experiment(name, tags={f"{TAG_PREFIX}log": "evergreen"}))
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":  # another writer created it first
                raise
            exp = cl.get_experiment_by_name(name)
    if exp is None:
        return None
    if exp.lifecycle_stage != "active":
        raise AuditLogError(
            f"audit experiment {name!r} on {settings.tracking_uri} is deleted: restore it "
            "(mlflow experiments restore) or set EVERGREEN_AUDIT_EXPERIMENT"
        )
    return str(exp.experiment_id)


def _tag_filter(key: str, value: str) -> str:
    if "'" in value:  # values are model names, actions and hex keys; refuse anything that could escape
        raise ValueError(f"invalid audit filter value {value!r}")
    return f"tags.`{TAG_PREFIX}{key}` = '{value}'"


def _search(cl: Any, experiment_id: str, filter_string: str) -> Iterator[Any]:
    token = None
    while True:
        page = cl.search_runs(
            [experiment_id],
            filter_string=filter_string,
            max_results=PAGE,
            order_by=["attributes.start_time ASC"],
            page_token=token,
        )
        yield from page
        token = page.token
        if not token:
            return


def _stored_run(cl: Any, experiment_id: str, key: str) -> str | None:
    runs = list(_search(cl, experiment_id, _tag_filter("idempotency_key", key)))
    return runs[0].info.run_id if runs else None


def spool_dir(settings: Settings) -> Path:
    return Path(settings.home) / "audit-spool"


def _spool(settings: Settings, entry: AuditEntry) -> Path:
    """Keep an entry MLflow could not take; the file name is stable per idempotency key."""
    folder = spool_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(entry.idempotency_key.encode()).hexdigest()[:24]
    path = folder / f"{int(entry.time.timestamp() * 1000):015d}-{digest}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(entry_json(entry))
    os.replace(tmp, path)  # a crash leaves the old file or the new one, never half of one
    return path


def spooled(settings: Settings) -> list[Path]:
    """Entries waiting for MLflow, oldest first."""
    folder = spool_dir(settings)
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def flush_spool(settings: Settings) -> int:
    """Store the spooled entries (idempotent: one already stored is just dropped); returns how many left the
    spool. Raises AuditLogUnavailable when MLflow is still unreachable (the rest stay spooled)."""
    done = 0
    for path in spooled(settings):
        try:
            entry = AuditEntry.model_validate_json(path.read_text())
        except ValueError as exc:
            logger.error("audit spool: %s is unreadable (%s); moved aside", path, exc)
            path.rename(path.with_suffix(".bad"))
            continue
        _store(settings, entry)
        path.unlink(missing_ok=True)
        done += 1
    if done:
        logger.info("audit: stored %d spooled entr%s", done, "y" if done == 1 else "ies")
    return done


def append(settings: Settings, entry: AuditEntry) -> Appended:
    """Store `entry` unless an entry with its idempotency key is already stored (spooled entries first).

    When MLflow cannot be reached the entry is spooled locally and AuditLogUnavailable is raised."""
    try:
        flush_spool(settings)
        return _store(settings, entry)
    except AuditLogUnavailable:
        path = _spool(settings, entry)
        logger.warning("audit: MLflow unreachable; entry %s spooled to %s", entry.idempotency_key, path)
        raise


def _store(settings: Settings, entry: AuditEntry) -> Appended:
    cl = _client(settings)
    with _unavailable_as_error(settings, "write"):
        exp_id = _experiment_id(cl, settings, create=True)
        assert exp_id is not None
        existing = _stored_run(cl, exp_id, entry.idempotency_key)
        if existing:
            logger.info("audit entry %s already stored (run %s)", entry.idempotency_key, existing)
            return Appended(existing, created=False)
        tags, fits = run_tags(entry)
        # One create request carries the whole entry when it fits in a tag: all of it or nothing.
        run = cl.create_run(
            exp_id,
            start_time=int(entry.time.timestamp() * 1000),
            tags=tags,
            run_name=f"{entry.action.value}-{entry.model}",
        )
        run_id = run.info.run_id
        if not fits:
            cl.log_text(run_id, entry_json(entry), ENTRY_ARTIFACT)
        # set_terminated prints "View run ..." on stdout; keep stdout clean for --json callers.
        with contextlib.redirect_stdout(sys.stderr):
            cl.set_terminated(run_id)
    logger.info("audit: %s %s by %s (run %s)", entry.action.value, entry.model, entry.actor, run_id)
    return Appended(run_id, created=True)


def _entry(cl: Any, run: Any) -> AuditEntry:
    tags = run.data.tags
    text = None
    if f"{TAG_PREFIX}entry_artifact" in tags:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = cl.download_artifacts(run.info.run_id, ENTRY_ARTIFACT, tmp)
                text = Path(path).read_text()
        except Exception as exc:  # noqa: BLE001  a missing artifact degrades to the key-field tags
            logger.warning("audit run %s: %s unreadable (%s)", run.info.run_id, ENTRY_ARTIFACT, exc)
    return entry_from_tags(tags, text)


def read(
    settings: Settings, model: str, *, action: Action | None = None, limit: int | None = None
) -> list[AuditEntry]:
    """A model's entries oldest first (one per idempotency key); the last `limit` when given.

    Spooled entries are stored first, so what MLflow missed while it was down reads back too."""
    check_model_name(model)
    flush_spool(settings)
    cl = _client(settings)
    with _unavailable_as_error(settings, "read"):
        exp_id = _experiment_id(cl, settings, create=False)
        if exp_id is None:
            return []
        filters = [_tag_filter("model", model)]
        if action is not None:
            filters.append(_tag_filter("action", action.value))
        runs = list(_search(cl, exp_id, " and ".join(filters)))
        stored = [(r.info.run_id, _entry(cl, r)) for r in runs]
    return history(stored, action=action, limit=limit)
