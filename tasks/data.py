"""Data tasks: pull a pinned version, validate with GX, read/quarantine batches, append to the DVC registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from adapters import batch_files, dvc_registry
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
    get_run_logger().info("pulled %s rows of %s at data_version %s", len(frame), version.path, version.id)
    return frame, version


@task(cache_policy=NO_CACHE)
def validate_frame(
    frame: pd.DataFrame, spec: ModelSpec, *, training_set: bool
) -> validation.ValidationSummary:
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
def quarantine_batch(path: Path, model: str, summary: validation.ValidationSummary) -> tuple[Path, Path]:
    """Move a rejected batch aside with its validation report (nothing is silently dropped)."""
    report: dict[str, Any] = {"validation": summary.model_dump(mode="json")}
    return batch_files.quarantine(path, model, report, get_settings().quarantine_dir)


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def append_to_registry(
    dataset: str, frame: pd.DataFrame, source: str, model: str
) -> tuple[DataVersion, bool, bool]:
    """Append a batch as a new DVC version. Safe to retry: rows already stored are reported as a duplicate."""
    return dvc_registry.append_batch(get_settings(), dataset, frame, source=source, model=model)
