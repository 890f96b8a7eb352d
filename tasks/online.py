"""Online retrains (issue 12): continue the champion's river model on the labelled rows it has not seen.

Registration policy: one retrain run = one labelled batch = at most one registered version, gated like any
other (the registry grows per batch, never per row). The rows are those of the training split after the
champion's `train_end` (its hold-out and the new batch); the new hold-out stays unseen for the gate.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from adapters import mlflow_registry
from evergreen import online, training, update
from evergreen.settings import get_settings
from evergreen.spec import ModelSpec
from tasks.training import Trained, train_challenger

ONLINE = "online"


def online_tags(champion_tags: dict[str, str], champion_version: str, rows: int) -> dict[str, str]:
    """Lineage of a continued model: mode online, updates since the last fresh fit, the version it continues."""
    count = int(champion_tags.get(update.COUNT_TAG, "0") or 0) + 1
    return {
        update.MODE_TAG: ONLINE,
        update.COUNT_TAG: str(count),
        update.BASE_TAG: str(champion_version),
        "evergreen.online_rows": str(rows),
    }


def _timed_continue(pipeline: Any, rows: pd.DataFrame, spec: ModelSpec) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    new = online.continue_pipeline(pipeline, rows, training.labels(rows, spec), spec.feature_names)
    return new, time.perf_counter() - wall, time.process_time() - cpu


@task(cache_policy=NO_CACHE)
def train_online(spec: ModelSpec, split: training.Split) -> Trained:
    """partial_fit the champion on the training rows after its train_end; a fresh fit without a champion."""
    log = get_run_logger()
    champ = mlflow_registry.get_champion(mlflow_registry.client(get_settings()), spec.name)
    if champ is None:
        return train_challenger.fn(spec, split)
    rows = training.unseen_holdout(
        split.train, spec.data.time_column, training.champion_trained_until(champ.tags)
    )
    if rows.empty:  # e.g. a forced retrain without a new batch: nothing to continue on
        log.warning("no labelled rows after v%s's train_end: fresh fit instead", champ.version)
        return train_challenger.fn(spec, split)
    try:
        base = mlflow_registry.load_sklearn(champ.model_uri)
        pipeline, wall, cpu = _timed_continue(base, rows, spec)
    except ValueError as exc:  # e.g. the champion predates kind river: start a fresh online model
        log.warning("cannot continue v%s (%s): fresh fit instead", champ.version, exc)
        return train_challenger.fn(spec, split)
    log.info("continued v%s online on %s new rows", champ.version, len(rows))
    return Trained(
        pipeline=pipeline, rows=rows, seconds=wall, cpu_seconds=cpu, base=base,
        mode_tags=online_tags(champ.tags, champ.version, len(rows)),
    )  # fmt: skip


def refit_online(spec: ModelSpec, frame: pd.DataFrame, challenger: Trained) -> Trained:
    """`training.refit` for a continued model: it goes on to learn the hold-out too, nothing is refit."""
    labelled = training.sort_by_time(frame.dropna(subset=[spec.data.target]), spec.data.time_column)
    last = str(challenger.rows[spec.data.time_column].max()) if not challenger.rows.empty else None
    rest = training.unseen_holdout(labelled, spec.data.time_column, last)
    pipeline, wall, cpu = _timed_continue(challenger.pipeline, rest, spec)
    return replace(
        challenger, pipeline=pipeline, rows=pd.concat([challenger.rows, rest]), refit=True,
        seconds=challenger.seconds + wall, cpu_seconds=challenger.cpu_seconds + cpu,
    )  # fmt: skip
