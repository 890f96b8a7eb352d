"""Training tasks: fit the challenger, score it against the champion on the hold-out, gate, refit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from adapters import mlflow_registry
from evergreen import gate, slices, training, update
from evergreen.metrics import metric_value
from evergreen.settings import get_settings
from evergreen.spec import TASK_METRICS, ModelSpec, Window


@dataclass(frozen=True)
class Trained:
    """A fitted pipeline and the rows it learned from; `seconds` adds up fit and refit."""

    pipeline: Any
    rows: pd.DataFrame
    seconds: float
    refit: bool = False


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
    pipeline, seconds = train_model.fn(spec, split.train, split.weights)
    return Trained(pipeline=pipeline, rows=split.train, seconds=seconds)


@task(cache_policy=NO_CACHE)
def train_update_or_full(
    spec: ModelSpec, split: training.Split, reason: str = ""
) -> tuple[Trained, dict[str, str]]:
    """A warm-start update of the champion when training.update allows it, else a full fit; plus lineage tags.

    Not yet called by flows/retrain.py (issue 11 part 2 is unfinished): the caller must add the tags to the version.
    """
    upd = spec.training.update
    champ = mlflow_registry.get_champion(mlflow_registry.client(get_settings()), spec.name) if upd else None
    mode = update.choose_mode(upd, champ.tags if champ else None, reason)
    if mode == "full" or champ is None or upd is None:
        return train_challenger.fn(spec, split), update.lineage_tags("full", None, None)
    window = Window(kind="rolling", period=upd.window)
    rows, _ = training.apply_window(split.train, window, spec.data.time_column)
    champ_pipe = mlflow_registry.load_sklearn(champ.model_uri)
    pipeline, seconds = update.update_fit(
        champ_pipe, rows, training.labels(rows, spec), spec.feature_names, upd.trees
    )
    get_run_logger().info("updated v%s with %s trees on %s rows", champ.version, upd.trees, len(rows))
    return Trained(pipeline=pipeline, rows=rows, seconds=seconds), update.lineage_tags(
        "update", champ.tags, champ.version
    )


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
    """The gate judged the twin trained without the hold-out; the registered model also learns from it."""
    if not (passed and spec.training.refit):
        return challenger
    rows, weights = training.refit_rows(frame, spec)
    pipeline, seconds = train_model.fn(spec, rows, weights)
    return Trained(pipeline=pipeline, rows=rows, seconds=challenger.seconds + seconds, refit=True)
