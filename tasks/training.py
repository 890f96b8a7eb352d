"""Training tasks: fit the challenger, score it against the champion on the hold-out, gate, refit."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from adapters import mlflow_registry
from evergreen import gate, slices, training, update
from evergreen.metrics import metric_value
from evergreen.settings import get_settings
from evergreen.spec import TASK_METRICS, ModelSpec, Window
from evergreen.spec_update import Update

T = TypeVar("T")


@dataclass(frozen=True)
class Trained:
    """A fitted pipeline and the rows it learned from.

    `seconds` (wall) and `cpu_seconds` (process CPU, all threads) add up every fit of the run, refit
    included. `base` is the champion pipeline an update continued (a refit continues it again);
    `mode_tags` are its training-mode lineage tags (evergreen.update.lineage_tags).
    """

    pipeline: Any
    rows: pd.DataFrame
    seconds: float
    refit: bool = False
    cpu_seconds: float = 0.0
    base: Any = None
    mode_tags: dict[str, str] = field(default_factory=dict)


def timed(fn: Callable[[], T]) -> tuple[T, float, float]:
    """Run `fn`; return its result, wall seconds and CPU seconds (time.process_time: all threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


@dataclass(frozen=True)
class Scored:
    """Challenger and champion scores on the same hold-out, plus the challenger's latency."""

    y: np.ndarray
    challenger: np.ndarray
    champion: np.ndarray | None
    champion_version: str | None
    latency_p95_ms: float
    holdout_metrics: dict[str, float]


@task(cache_policy=NO_CACHE)
def train_model(spec: ModelSpec, train: pd.DataFrame, weights: Any = None) -> tuple[Any, float]:
    model, seconds = training.fit(spec, train, weights)
    get_run_logger().info("trained on %s rows in %.2fs", len(train), seconds)
    return model, seconds


@task(cache_policy=NO_CACHE)
def train_challenger(spec: ModelSpec, split: training.Split) -> Trained:
    """Fit on the training rows only, so the gate judges it on a hold-out it never saw."""
    (pipeline, _), wall, cpu = timed(lambda: train_model.fn(spec, split.train, split.weights))
    return Trained(
        pipeline=pipeline, rows=split.train, seconds=wall, cpu_seconds=cpu,
        mode_tags=update.lineage_tags("full", None, None),
    )  # fmt: skip


@task(cache_policy=NO_CACHE)
def train_update_or_full(spec: ModelSpec, split: training.Split, reason: str = "") -> Trained:
    """A warm-start update of the current champion when `training.update` allows it, else a full fit.

    The mode comes from the CURRENT champion's tags (evergreen.update.choose_mode), so after a rollback
    the next update continues the restored champion and counts from its update count.
    """
    if spec.training.is_online:  # issue 12: continue the champion's river model (tasks/online.py)
        from tasks.online import train_online  # lazy: tasks.online builds on this module

        return train_online.fn(spec, split)
    upd = spec.training.update
    champ = mlflow_registry.get_champion(mlflow_registry.client(get_settings()), spec.name) if upd else None
    mode = update.choose_mode(upd, champ.tags if champ else None, reason)
    if mode == "full" or champ is None or upd is None:
        return train_challenger.fn(spec, split)
    log = get_run_logger()
    base = mlflow_registry.load_sklearn(champ.model_uri)
    rows, _ = training.apply_window(
        split.train, Window(kind="rolling", period=upd.window), spec.data.time_column
    )
    try:
        pipeline, wall, cpu = _continue(spec, base, rows, upd)
    except ValueError as exc:  # e.g. a champion that is not LightGBM, or lacks a spec'd feature
        log.warning("cannot update v%s (%s): full fit instead", champ.version, exc)
        return train_challenger.fn(spec, split)
    log.info("updated v%s with %s trees on %s rows", champ.version, upd.trees, len(rows))
    return Trained(
        pipeline=pipeline, rows=rows, seconds=wall, cpu_seconds=cpu, base=base,
        mode_tags=update.lineage_tags("update", champ.tags, champ.version),
    )  # fmt: skip


def _continue(spec: ModelSpec, base: Any, rows: pd.DataFrame, upd: Update) -> tuple[Any, float, float]:
    """update_fit timed like a full fit (wall and CPU around the whole call)."""
    missing = sorted(set(spec.feature_names) - set(getattr(base, "feature_names_in_", spec.feature_names)))
    if missing:
        raise ValueError(f"the champion was not trained on {missing}")
    (pipeline, _), wall, cpu = timed(
        lambda: update.update_fit(
            base, rows, training.labels(rows, spec), spec.feature_names, upd.trees, upd.learning_rate
        )
    )
    return pipeline, wall, cpu


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def score_candidate(spec: ModelSpec, pipeline: Any, holdout: pd.DataFrame) -> Scored:
    """Score challenger and current champion on the hold-out. Reads only: safe to retry."""
    y = training.labels(holdout, spec)
    chal = training.predict_scores(pipeline, holdout, spec.feature_names)
    champ = mlflow_registry.get_champion(mlflow_registry.client(get_settings()), spec.name)
    champ_scores = None
    if champ is not None:
        champ_pipe = mlflow_registry.load_sklearn(champ.model_uri)
        missing = sorted(set(champ_pipe.feature_names_in_) - set(holdout.columns))
        if missing:
            raise ValueError(f"champion v{champ.version} needs columns {missing} that the hold-out lacks")
        champ_scores = training.predict_scores(champ_pipe, holdout)
    return Scored(
        y=y,
        challenger=chal,
        champion=champ_scores,
        champion_version=champ.version if champ else None,
        latency_p95_ms=training.batch_latency_p95_ms(
            pipeline, holdout[spec.feature_names], spec.gate.latency_batch_rows
        ),
        holdout_metrics=holdout_metrics(spec, y, chal),
    )


def holdout_metrics(spec: ModelSpec, y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Every metric of the spec's task type on the hold-out, as `holdout_<metric>`."""
    return {f"holdout_{m}": metric_value(m, y, scores) for m in TASK_METRICS[spec.task]}


@task(cache_policy=NO_CACHE)
def gate_candidate(spec: ModelSpec, scored: Scored, rows: pd.DataFrame | None = None) -> gate.GateDecision:
    """The promotion gate (evergreen.gate.decide) on the scored hold-out, then `gate.slices` on `rows`."""
    verdict = gate.decide(
        spec.gate,
        spec.metric,
        scored.y,
        scored.challenger,
        scored.champion,
        champion_version=scored.champion_version,
        latency_p95_ms=scored.latency_p95_ms,
    )
    if spec.gate.enabled and spec.gate.slices and rows is not None and scored.champion is not None:
        table = slices.slice_table(
            rows, spec.gate.slices, scored.y, scored.challenger, scored.champion,
            metric=spec.metric, tolerance=spec.gate.tolerance, min_rows=spec.gate.slice_min_rows,
        )  # fmt: skip
        verdict = slices.with_slices(verdict, table, spec.gate.tolerance)
    get_run_logger().info("gate %s: %s", "passed" if verdict.passed else "rejected", verdict.summary)
    return verdict


@task(cache_policy=NO_CACHE)
def refit_if_passed(spec: ModelSpec, frame: pd.DataFrame, challenger: Trained, passed: bool) -> Trained:
    """The gate judged the twin trained without the hold-out; the registered model also learns from it.

    An update is refit as an update: the same champion continued on the update window, hold-out included.
    """
    if not (passed and spec.training.refit):
        return challenger
    if challenger.mode_tags.get(update.MODE_TAG) == "online":  # issue 12: learn the hold-out too, no refit
        from tasks.online import refit_online

        return refit_online(spec, frame, challenger)
    rows, weights = training.refit_rows(frame, spec)
    if challenger.base is not None and spec.training.update is not None:
        window = Window(kind="rolling", period=spec.training.update.window)
        rows, _ = training.apply_window(rows, window, spec.data.time_column)
        pipeline, wall, cpu = _continue(spec, challenger.base, rows, spec.training.update)
    else:
        (pipeline, _), wall, cpu = timed(lambda: train_model.fn(spec, rows, weights))
    return replace(
        challenger, pipeline=pipeline, rows=rows, refit=True,
        seconds=challenger.seconds + wall, cpu_seconds=challenger.cpu_seconds + cpu,
    )  # fmt: skip
