"""The ingest flow: read -> validate -> quarantine (bad) or append as a new DVC version (good) -> volume rule -> announce.

The volume rule is `evergreen.volume.volume_decision`, the same rule (and inputs) the backtester replays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger
from pydantic import BaseModel

from evergreen import events
from evergreen.events import Event
from evergreen.volume import volume_decision, volume_inputs
from tasks.announce import emit_event
from tasks.data import append_to_registry, quarantine_batch, read_batch, validate_frame
from tasks.registry import champion_tags
from tasks.spec import load_model_spec


class BatchRejected(RuntimeError):
    """The batch failed validation and was quarantined; the message names the failed expectations."""


class IngestOutcome(BaseModel):
    model: str
    status: Literal["ingested", "rejected", "duplicate"]
    source: str
    rows: int
    data_version: str | None = None
    data_rev: str | None = None
    total_rows: int | None = None
    dataset_created: bool = False
    new_rows_since_champion: int | None = None
    new_share: float | None = None  # None when there is no champion to compare with
    volume_threshold_met: bool = False
    quarantined_to: str | None = None
    report: str | None = None
    failures: list[str] = []


@flow(name="ingest", log_prints=False)
def ingest(model: str, path: str) -> dict[str, Any]:
    """Validate `path` (CSV or parquet) against models/<model>.yaml; append it or quarantine it."""
    log = get_run_logger()
    spec = load_model_spec(model)
    src = Path(path)
    frame: Any = read_batch(src, spec)  # a DataFrame (pandas is untyped here, so mypy cannot tell)
    summary = validate_frame(frame, spec, training_set=False)
    if not summary.success:
        target, report = quarantine_batch(src, model, summary)
        failures = [f.describe() for f in summary.failures]
        emit_event(
            Event.DATA_REJECTED,
            model,
            events.data_rejected(str(src), len(frame), str(target), str(report), failures),
        )
        raise BatchRejected(
            f"batch {src} rejected and quarantined to {target} (report {report}):\n{summary.message()}"
        )

    batch = frame[spec.columns]  # extra columns are not stored: the spec defines the dataset
    version, created, duplicate = append_to_registry(spec.data.path, batch, str(src), model)
    outcome = IngestOutcome(
        model=model, status="ingested", source=str(src), rows=len(batch), data_version=version.id,
        data_rev=version.rev, total_rows=version.rows, dataset_created=created,
    )  # fmt: skip
    if duplicate:
        # Nothing new entered the data, so nothing downstream (monitor, volume trigger) should run.
        log.warning("batch %s holds rows already ingested; data_version stays %s", src, version.id)
        return outcome.model_copy(update={"status": "duplicate", "dataset_created": False}).model_dump()

    volume = volume_inputs(version.rows, champion_tags(model))
    decision = volume_decision(volume.new_rows, volume.champion_rows, spec)
    outcome = outcome.model_copy(
        update={"new_rows_since_champion": volume.new_rows, "volume_threshold_met": decision.retrain,
                "new_share": None if volume.share is None else round(volume.share, 6)}
    )  # fmt: skip
    payload = events.data_ingested(outcome.model_dump(), spec.triggers.volume.min_new_share)
    emit_event(Event.DATA_INGESTED, model, payload, labels=events.volume_labels(decision.retrain))
    log.info(
        "ingested %s rows into %s: data_version %s (%s)",
        len(batch),
        version.path,
        version.id,
        decision.detail,
    )
    return outcome.model_dump()
