"""The ingest flow's work, imported when a run starts (flows/ingest.py stays light to import).

A process worker starts every flow run in a fresh Python process, which must import the deployment's
entrypoint before the run can turn `Running`. flows/ingest.py therefore imports only Prefect and
pydantic; this module holds the steps and pulls in pandas, GX (through tasks.data), DVC and MLflow.
See docs/scale.md ("Event to run").
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import get_run_logger

from adapters.dvc_ingest import Pending
from evergreen import events
from evergreen.audit import Action
from evergreen.batch_checks import BatchCheck, BatchCounts, admit
from evergreen.events import Event
from evergreen.settings import get_settings
from evergreen.spec import ModelSpec
from evergreen.volume import volume_decision, volume_inputs
from flows.ingest import BatchRejected, IngestIncomplete, IngestOutcome
from tasks.announce import emit_event
from tasks.audit import record_decision
from tasks.data import (
    append_to_registry,
    emit_ingested,
    mark_announced,
    quarantine_batch,
    read_batch,
    validate_frame,
)
from tasks.registry import champion_tags
from tasks.spec import load_model_spec


def _unreachable(exc: BaseException) -> bool:
    import requests
    from mlflow.exceptions import MlflowException

    from adapters.audit_log import AuditLogUnavailable

    return isinstance(exc, MlflowException | requests.RequestException | OSError | AuditLogUnavailable)


def _incomplete(p: Pending, exc: BaseException) -> IngestIncomplete:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    return IngestIncomplete(
        f"batch {p.source} is committed and pushed as data_version {p.version().id}, but MLflow at "
        f"{get_settings().tracking_uri} failed ({first}); its audit entry and evergreen.data.ingested "
        "event are pending: re-run the same ingest to complete them"
    )


def _reject(
    model: str, src: Path, rows: int, failures: list[str], report: dict[str, Any], detail: str
) -> None:
    """Quarantine, announce, audit, then raise BatchRejected (exit 2)."""
    log = get_run_logger()
    target, report_path = quarantine_batch(src, model, report)
    emit_event(
        Event.DATA_REJECTED,
        model,
        events.data_rejected(str(src), rows, str(target), str(report_path), failures),
    )
    try:
        record_decision(
            model,
            Action.REJECT_BATCH,
            versions={"data_version": None},
            reason="; ".join(failures)[:500],
            evidence={
                "source": str(src),
                "quarantined_to": str(target),
                "report": str(report_path),
                **report,
            },
        )
    except Exception as exc:  # noqa: BLE001  the file is quarantined with its report either way
        log.error("audit entry for the rejected batch %s not written: %s", src, exc)
    raise BatchRejected(f"batch {src} rejected and quarantined to {target} (report {report_path}): {detail}")


def _announce(model: str, spec: ModelSpec, p: Pending) -> IngestOutcome:
    """Volume rule, audit entry, event, then forget the marker. MLflow failures leave it pending."""
    version = p.version()
    outcome = IngestOutcome(
        model=model, status="ingested", source=p.source, rows=p.rows, data_version=version.id,
        data_rev=version.rev, total_rows=version.rows, dataset_created=p.created, checks=p.checks,
    )  # fmt: skip
    try:
        volume = volume_inputs(version.rows, champion_tags(model))
        record_decision(
            model,
            Action.INGEST,
            versions={"data_version": version.id},
            reason=f"{p.rows} new rows from {Path(p.source).name}",
            evidence={"source": p.source, "rows": p.rows, "batch": p.batch, "checks": p.checks},
            key=f"ingest/{model}/{p.batch}/{version.rev[:12]}",
        )
    except Exception as exc:
        if _unreachable(exc):
            raise _incomplete(p, exc) from exc
        raise
    decision = volume_decision(volume.new_rows, volume.champion_rows, spec)
    outcome = outcome.model_copy(
        update={"new_rows_since_champion": volume.new_rows, "volume_threshold_met": decision.retrain,
                "new_share": None if volume.share is None else round(volume.share, 6)}
    )  # fmt: skip
    payload = events.data_ingested(outcome.model_dump(), spec.triggers.volume.min_new_share)
    emit_ingested(model, payload, events.volume_labels(decision.retrain), version.rev)
    mark_announced(p.batch)
    get_run_logger().info(
        "ingested %s rows into %s: data_version %s (%s)", p.rows, version.path, version.id, decision.detail
    )
    return outcome


def complete_pending(model: str, spec: ModelSpec, pending: list[Pending]) -> None:
    """Announce batches and label files that an earlier run committed but did not announce."""
    from flows.labels import announce_labels  # flows.labels builds on this module

    for p in pending:
        get_run_logger().warning("completing the announcement of %s (committed as %s)", p.source, p.rev)
        if p.kind == "labels":
            announce_labels(model, p)
        else:
            _announce(model, spec, p)


def run(model: str, path: str) -> dict[str, Any]:
    """The body of `flows.ingest.ingest` (same arguments)."""
    log = get_run_logger()
    spec = load_model_spec(model)
    src = Path(path)
    frame: Any = read_batch(src, spec)  # a DataFrame (pandas is untyped here, so mypy cannot tell)
    reasons = admit(frame, spec, datetime.now(UTC))  # empty, unparseable or future times
    summary = validate_frame(frame, spec, training_set=False)
    if reasons or not summary.success:
        # Admission reasons come first, so an empty or mistimed batch gets its own clear reason; the GX
        # result is kept in the report beside them.
        check = BatchCheck("rejected", frame.iloc[0:0], BatchCounts(received=len(frame)), tuple(reasons))
        failures = reasons + [f.describe() for f in summary.failures]
        report = {"checks": check.as_dict(), "validation": summary.model_dump(mode="json")}
        detail = "; ".join(reasons) if reasons else "\n" + summary.message()
        _reject(model, src, len(frame), failures, report, detail)

    batch = frame[spec.columns]  # extra columns are not stored: the spec defines the dataset
    appended = append_to_registry(spec, batch, str(src), model)
    check = appended.check
    if check.status == "rejected":
        _reject(
            model, src, len(batch), list(check.reasons), {"checks": check.as_dict()}, "; ".join(check.reasons)
        )
    own = next((p for p in appended.pending if p.batch == appended.batch), None)
    complete_pending(model, spec, [p for p in appended.pending if p is not own])
    if own is not None:  # just committed, or committed by an earlier run whose announcement failed
        return _announce(model, spec, own).model_dump()
    # Nothing new entered the data, so nothing downstream (monitor, volume trigger) should run.
    version = appended.version
    log.warning("batch %s: %s", src, check.message())
    return IngestOutcome(
        model=model, status="duplicate", source=str(src), rows=len(batch), checks=check.as_dict(),
        data_version=None if version is None else version.id, data_rev=None if version is None else version.rev,
        total_rows=None if version is None else version.rows,
    ).model_dump()  # fmt: skip
