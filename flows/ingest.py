"""The ingest flow: GX-validate a batch, then quarantine it (bad) or append it as a new DVC version (good)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from adapters import batch_files as batches
from adapters import dvc_registry as data_registry
from adapters import mlflow_registry as model_registry
from evergreen.settings import get_settings
from evergreen.validation import coerce_batch
from tasks.steps import emit_event, load_model_spec, validate_frame


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
    new_share: float | None = None
    volume_threshold_met: bool = False
    quarantined_to: str | None = None
    report: str | None = None
    failures: list[str] = []


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def append_to_registry(
    dataset: str, frame: Any, source: str, model: str
) -> tuple[data_registry.DataVersion, bool, bool]:
    return data_registry.append_batch(get_settings(), dataset, frame, source=source, model=model)


@task(cache_policy=NO_CACHE)
def champion_data_rows(model: str) -> int | None:
    """How many rows the champion's data version held (None when there is no champion)."""
    champ = model_registry.get_champion(model_registry.client(get_settings()), model)
    if champ is None or "data_rows" not in champ.tags:
        return None
    return int(champ.tags["data_rows"])


@flow(name="ingest", log_prints=False)
def ingest(model: str, path: str) -> dict[str, Any]:
    """Validate `path` (CSV or parquet) against models/<model>.yaml; append it or quarantine it."""
    log = get_run_logger()
    settings = get_settings()
    spec = load_model_spec(model)
    src = Path(path)
    frame = coerce_batch(batches.read_batch(src), spec)
    summary = validate_frame(frame, spec, training_set=False)
    if not summary.success:
        failures = [f.describe() for f in summary.failures]
        target, report = batches.quarantine(
            src, model, {"validation": summary.model_dump(mode="json")}, settings.quarantine_dir
        )
        emit_event(
            "evergreen.data.rejected",
            model,
            {"source": str(src), "rows": len(frame), "quarantined_to": str(target), "report": str(report),
             "failures": failures},
        )
        raise BatchRejected(
            f"batch {src} rejected and quarantined to {target} (report {report}):\n{summary.message()}"
        )

    batch = frame[spec.columns]  # extra columns are not stored: the spec defines the dataset
    version, created, duplicate = append_to_registry(spec.data.path, batch, str(src), model)
    if duplicate:
        # Nothing new entered the data, so nothing downstream (monitor, volume trigger) should run.
        log.warning("batch %s holds rows already ingested; data_version stays %s", src, version.id)
        return IngestOutcome(
            model=model, status="duplicate", source=str(src), rows=len(batch), data_version=version.id,
            data_rev=version.rev, total_rows=version.rows,
        ).model_dump()
    champ_rows = champion_data_rows(model)
    new_rows = version.rows - champ_rows if champ_rows is not None else version.rows
    share = new_rows / champ_rows if champ_rows else 1.0
    met = spec.triggers.volume.enabled and share >= spec.triggers.volume.min_new_share
    outcome = IngestOutcome(
        model=model, status="ingested", source=str(src), rows=len(batch), data_version=version.id, data_rev=version.rev,
        total_rows=version.rows, dataset_created=created, new_rows_since_champion=new_rows,
        new_share=round(share, 6), volume_threshold_met=met,
    )
    emit_event(
        "evergreen.data.ingested",
        model,
        {**outcome.model_dump(exclude={"failures", "quarantined_to", "report", "status"}),
         "volume_min_new_share": spec.triggers.volume.min_new_share},
        # Triggers cannot compare payload numbers, so the threshold verdict travels as a resource label.
        labels={"evergreen.volume-threshold-met": str(met).lower()},
    )
    log.info("ingested %s rows into %s: data_version %s", len(batch), version.path, version.id)
    return outcome.model_dump()
