"""Data tasks: pull a pinned version, validate with GX, read/quarantine batches, append to the DVC registry."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from adapters import batch_files, dvc_ingest, dvc_registry
from adapters.dvc_registry import DataVersion
from evergreen import validation
from evergreen.settings import get_settings
from evergreen.spec import ModelSpec


class ValidationFailed(RuntimeError):
    """A GX suite failed; the message lists each failed expectation."""


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def pull_data(spec: ModelSpec, rev: str | None) -> tuple[pd.DataFrame, DataVersion]:
    """Read the model's dataset at registry rev `rev` (default HEAD). A read: safe to retry."""
    frame, version = dvc_registry.read_dataset(get_settings(), spec.data.path, rev)
    log = get_run_logger()
    log.info("pulled %s rows of %s at data_version %s", len(frame), version.path, version.id)
    if spec.data.delayed_labels is not None:
        # Training, the gate and the hold-out see labelled rows only (labels ingested up to this version).
        labelled = frame[spec.data.target].notna()
        log.info("%s of them are labelled (data.delayed_labels); training on those", int(labelled.sum()))
        frame = frame[labelled].reset_index(drop=True)
    return frame, version


def _placeholder_labels(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """A delayed-labels batch with its missing labels filled by a valid one, for GX only.

    The target expectations (not null, in the label set / numeric) then judge the labelled rows alone and
    every other expectation all rows: the batch suite without its not-null target check. Done here rather
    than in evergreen/validation.py's suite so the stored rows stay unlabelled."""
    d, target = spec.data, spec.data.target
    missing = frame[target].isna()
    if not missing.any():
        return frame
    given = frame.loc[~missing, target]
    fill = given.iloc[0] if len(given) else (d.labels[0] if d.labels else d.positive_label)
    out = frame.copy()
    out[target] = out[target].astype(object).where(~missing, 0.0 if fill is None else fill).infer_objects()
    return out


@task(cache_policy=NO_CACHE)
def validate_frame(
    frame: pd.DataFrame, spec: ModelSpec, *, training_set: bool
) -> validation.ValidationSummary:
    if spec.data.delayed_labels is not None and not training_set and spec.data.target in frame.columns:
        frame = _placeholder_labels(frame, spec)
    summary = validation.validate(frame, spec, training=training_set)
    log = get_run_logger()
    (log.info if summary.success else log.error)(summary.message())
    return summary


@task(cache_policy=NO_CACHE)
def validate_training_set(
    frame: pd.DataFrame, spec: ModelSpec, data_version: str
) -> validation.ValidationSummary:
    """The training suite; a failure stops the retrain before anything is registered."""
    summary = validate_frame.fn(frame, spec, training_set=True)
    if not summary.success:
        raise ValidationFailed(
            f"training set at data_version {data_version} failed validation; nothing registered.\n"
            + summary.message()
        )
    return summary


@task(cache_policy=NO_CACHE)
def read_batch(path: Path, spec: ModelSpec) -> pd.DataFrame:
    """Read a CSV/parquet batch and coerce its columns to the spec's types."""
    return validation.coerce_batch(batch_files.read_batch(path), spec)


@task(cache_policy=NO_CACHE)
def quarantine_batch(path: Path, model: str, report: dict[str, Any]) -> tuple[Path, Path]:
    """Move a rejected batch aside with its report, e.g. {"validation": ...} or {"checks": ...}."""
    return batch_files.quarantine(path, model, report, get_settings().quarantine_dir)


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def append_to_registry(spec: ModelSpec, frame: pd.DataFrame, source: str, model: str) -> dvc_ingest.Appended:
    """Check the rows against the committed data and commit the new ones (adapters.dvc_ingest).

    Safe to retry: each attempt first rolls back what a failed one left uncommitted, and rows already
    committed come back as a duplicate (with the batch still pending announcement if it was this one)."""
    return dvc_ingest.append_batch(get_settings(), spec, frame, source=source, model=model)


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def append_labels(
    spec: ModelSpec, labels: pd.DataFrame, source: str, model: str
) -> dvc_ingest.AppendedLabels:
    """Check delayed labels against the committed rows and commit the new ones; as safe to retry as
    `append_to_registry` (a committed labels file comes back as a duplicate, still pending)."""
    return dvc_ingest.append_labels(get_settings(), spec, labels, source=source, model=model)


@task(cache_policy=NO_CACHE)
def read_labels(path: Path) -> pd.DataFrame:
    """Read a labels file (CSV or parquet: the id column and the target) as it is."""
    return batch_files.read_batch(path)


@task(cache_policy=NO_CACHE)
def mark_announced(batch: str) -> None:
    """The batch's audit entry and event are out: it is no longer pending."""
    dvc_ingest.clear_pending(get_settings(), batch)


@task(cache_policy=NO_CACHE)
def emit_ingested(model: str, payload: dict[str, Any], labels: dict[str, str], rev: str) -> str:
    """`evergreen.data.ingested` with an id derived from the data commit: a repeated emit (a retry that
    completes an announcement) carries the same id, so the Prefect server stores the event once."""
    from evergreen.events import Event

    return emit_for_commit(Event.DATA_INGESTED.value, model, payload, labels, rev)


@task(cache_policy=NO_CACHE)
def emit_labels_ingested(model: str, payload: dict[str, Any], rev: str) -> str:
    """`evergreen.labels.ingested`, with an id derived from the labels commit (as `emit_ingested`)."""
    from evergreen.events import Event

    return emit_for_commit(Event.LABELS_INGESTED.value, model, payload, {}, rev)


def emit_for_commit(name: str, model: str, payload: dict[str, Any], labels: dict[str, str], rev: str) -> str:
    from prefect.events import emit_event

    from adapters.prefect_api import EventNotEmitted
    from evergreen.events import resource

    event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"evergreen:{name}:{model}:{rev}")
    ev = emit_event(
        event=name, resource=resource(model, labels), payload={"model": model, **payload}, id=event_id
    )
    if ev is None:
        raise EventNotEmitted(f"{name} for {model} was not emitted (check PREFECT_API_URL)")
    return str(ev.id)
