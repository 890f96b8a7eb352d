"""Prefect tasks: thin wrappers that add retries, logging and I/O around the pure core."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from adapters import dvc_registry as data_registry
from adapters import mlflow_registry as model_registry
from adapters.prefect_api import emit
from evergreen import training, validation
from evergreen.policy import Decision, cooldown_check
from evergreen.settings import get_settings
from evergreen.spec import ModelSpec, load_spec


class ValidationFailed(RuntimeError):
    """A GX suite failed; the message lists each failed expectation."""


@task(cache_policy=NO_CACHE)
def load_model_spec(model: str, overrides: dict[str, Any] | None = None) -> ModelSpec:
    spec = load_spec(model, get_settings().models_dir)
    return spec.with_overrides(overrides) if overrides else spec


@task(cache_policy=NO_CACHE)
def check_cooldown(spec: ModelSpec, *, force: bool, reason: str) -> Decision:
    """The registry-backed cooldown: survives `prefect deploy` recreating automations."""
    cl = model_registry.client(get_settings())
    last = model_registry.last_promotion(cl, spec.name)
    return cooldown_check(last, datetime.now(UTC), spec.triggers.cooldown, force=force, reason=reason)


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def pull_data(spec: ModelSpec, rev: str | None) -> tuple[pd.DataFrame, data_registry.DataVersion]:
    frame, version = data_registry.read_dataset(get_settings(), spec.data.path, rev)
    get_run_logger().info("pulled %s rows of %s at data_version %s", len(frame), version.path, version.id)
    return frame, version


@task(cache_policy=NO_CACHE)
def validate_frame(frame: pd.DataFrame, spec: ModelSpec, *, training_set: bool) -> validation.ValidationSummary:
    summary = validation.validate(frame, spec, training=training_set)
    log = get_run_logger()
    (log.info if summary.success else log.error)(summary.message())
    return summary


@task(cache_policy=NO_CACHE)
def train_model(spec: ModelSpec, train: pd.DataFrame, weights: Any = None) -> tuple[Any, float]:
    model, seconds = training.fit(spec, train, weights)
    get_run_logger().info("trained on %s rows in %.2fs", len(train), seconds)
    return model, seconds


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def champion_scores(spec: ModelSpec, holdout: pd.DataFrame) -> tuple[model_registry.Champion | None, Any]:
    """The current champion's scores on the challenger's hold-out (None when there is no champion)."""
    settings = get_settings()
    champ = model_registry.get_champion(model_registry.client(settings), spec.name)
    if champ is None:
        return None, None
    pipe = model_registry.load_sklearn(champ.model_uri)
    missing = sorted(set(pipe.feature_names_in_) - set(holdout.columns))
    if missing:
        raise ValueError(f"champion v{champ.version} needs columns {missing} that the hold-out lacks")
    return champ, training.predict_scores(pipe, holdout)


@task(cache_policy=NO_CACHE)
def publish_markdown(key: str, markdown: str, description: str) -> None:
    create_markdown_artifact(key=key, markdown=markdown, description=description)


@task(cache_policy=NO_CACHE)
def publish_table(key: str, rows: list[dict[str, Any]], description: str) -> None:
    create_table_artifact(key=key, table=rows, description=description)


@task(cache_policy=NO_CACHE)
def emit_event(event: str, model: str, payload: dict[str, Any], labels: dict[str, str] | None = None) -> str:
    return str(emit(event, model, payload, labels).id)

