"""The monitor flow's tasks: find the champion, load its profile, select and score rows, persist the streak.

The "K consecutive degraded batches" state of the performance trigger lives on the champion's model
version as tags (`perf_below_floor_streak`, `perf_last_batch`, ...), so it survives across runs and
starts again from zero whenever the champion changes. The rule itself is in evergreen.monitoring.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from adapters import batch_files
from adapters import dvc_rows as monitor_rows
from adapters import mlflow_registry as model_registry
from adapters.dvc_registry import RegistryError
from adapters.dvc_rows import Rows
from evergreen import training
from evergreen.drift import ReferenceProfile
from evergreen.monitoring import StreakState
from evergreen.settings import get_settings
from evergreen.spec import ModelSpec
from evergreen.validation import coerce_batch

STREAK_TAG = "perf_below_floor_streak"
LAST_BATCH_TAG = "perf_last_batch"
LAST_VALUE_TAG = "perf_last_value"
UPDATED_TAG = "perf_updated_at"


def streak_state(tags: Mapping[str, str]) -> StreakState:
    """The streak stored on a model version (a fresh champion has none: zero)."""
    return StreakState(value=int(tags.get(STREAK_TAG, "0") or 0), last_batch=tags.get(LAST_BATCH_TAG, ""))


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def find_champion(model: str) -> model_registry.Champion | None:
    return model_registry.get_champion(model_registry.client(get_settings()), model)


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def load_profile(champ: model_registry.Champion) -> ReferenceProfile:
    return monitor_rows.load_profile(get_settings(), champ)


@task(cache_policy=NO_CACHE)
def read_batch_file(spec: ModelSpec, batch: str) -> Rows:
    """A batch file given on the command line, coerced to the spec's types.

    A batch without a critical feature is refused: measuring the rest would report "drift none"
    for exactly the feature that must never go unwatched (issue 9 case 12)."""
    frame = batch_files.read_batch(Path(batch))
    lacking = [f.name for f in spec.features if f.critical and f.name not in frame.columns]
    if lacking:
        raise batch_files.BatchError(
            f"monitor batch {batch} lacks critical feature column(s) {lacking}: drift cannot be measured"
        )
    return Rows(coerce_batch(frame, spec), batch, "file")


@task(cache_policy=NO_CACHE)
def select_rows(spec: ModelSpec, champ: model_registry.Champion | None, data_rev: str | None) -> Rows:
    """The registry rows to measure; selection "none" when the model has no data yet."""
    try:
        rows = monitor_rows.select_rows(get_settings(), spec, champ, data_rev)
    except RegistryError as exc:
        if data_rev:  # an explicit rev that holds no data is the caller's mistake
            raise
        # e.g. the cron monitor of a model nothing has been ingested for yet: report it, do not fail
        return Rows(pd.DataFrame(), str(exc), "none")
    get_run_logger().info(
        "measuring %s rows: %s (data_version %s)", len(rows.frame), rows.source, rows.data_version
    )
    return rows


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def champion_batch_scores(
    spec: ModelSpec, champ: model_registry.Champion, frame: pd.DataFrame
) -> np.ndarray | None:
    """The champion's scores on the batch; None when the batch lacks a feature the model needs."""
    pipe = model_registry.load_sklearn(champ.model_uri)
    missing = sorted(set(pipe.feature_names_in_) - set(frame.columns))
    if missing or frame.empty:
        get_run_logger().warning("not scoring the batch: missing columns %s", missing)
        return None
    return training.predict_scores(pipe, frame)


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def save_streak(model: str, version: str, state: StreakState, value: float | None) -> None:
    """Store the champion's new streak as version tags (idempotent: the same tags on a retry)."""
    model_registry.tag_version(
        get_settings(),
        model,
        version,
        {
            STREAK_TAG: str(state.value),
            LAST_BATCH_TAG: state.last_batch,
            LAST_VALUE_TAG: "" if value is None else f"{value:.6f}",
            UPDATED_TAG: datetime.now(UTC).isoformat(),
        },
    )
