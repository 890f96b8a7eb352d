"""Model Registry tasks: cooldown, the champion's tags, recording a candidate (lineage, MLflow run).

Registering the version and moving the alias are in tasks/promotion.py (idempotent, compare-and-swap).

Retries only where a retry is safe: reads and idempotent alias/tag writes. Logging a run or registering
a version creates a new object each call, so those are not retried.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import yaml
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from adapters import mlflow_registry as registry
from adapters.dvc_registry import DataVersion, frame_md5
from evergreen import estimate, gate, lineage, training
from evergreen.drift import build_profile, multivariate
from evergreen.drift.impact import feature_importance
from evergreen.gate import GateDecision
from evergreen.policy import Decision, cooldown_check
from evergreen.settings import code_git_sha, get_settings
from evergreen.spec import ModelSpec
from evergreen.validation import ValidationSummary
from tasks.training import Scored, Trained


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def check_cooldown(spec: ModelSpec, *, force: bool, reason: str) -> Decision:
    """The registry-backed cooldown: survives `prefect deploy` recreating automations."""
    last = registry.last_promotion(registry.client(get_settings()), spec.name)
    return cooldown_check(last, datetime.now(UTC), spec.triggers.cooldown, force=force, reason=reason)


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def champion_tags(model: str) -> dict[str, str] | None:
    """The champion's version tags (its lineage), or None when there is no champion."""
    champ = registry.get_champion(registry.client(get_settings()), model)
    return None if champ is None else champ.tags


@task(cache_policy=NO_CACHE)
def describe_lineage(
    spec: ModelSpec,
    data: DataVersion,
    trained: Trained,
    holdout: pd.DataFrame,
    validation: ValidationSummary,
    verdict: GateDecision,
    reason: str,
    trigger_event_id: str | None,
) -> dict[str, str]:
    """The lineage tags of the version about to be registered (evergreen.lineage.build_lineage)."""
    bounds = training.Split(train=trained.rows, holdout=holdout, weights=None).bounds(spec.data.time_column)
    tags = lineage.build_lineage(
        data=data,
        registry=get_settings().registry_path,
        bounds=bounds,
        train_rows=len(trained.rows),
        train_rows_md5=frame_md5(trained.rows),
        refit=trained.refit,
        holdout_rows=len(holdout),
        window=spec.training.window.model_dump(exclude_none=True),
        reason=reason,
        trigger_event_id=trigger_event_id,
        flow_run_id=str(flow_run.get_id() or ""),
        code_sha=code_git_sha(),
        validation=validation,
        verdict=verdict,
        train_seconds=trained.seconds,
        train_cpu_seconds=trained.cpu_seconds,
    )
    # The training mode (full or update, base version, update count): evergreen.update.lineage_tags.
    return {**tags, **trained.mode_tags, **estimate.calibrator_tags(spec.task), **multivariate.sample_tags()}


@task(cache_policy=NO_CACHE)
def log_candidate(
    spec: ModelSpec,
    trained: Trained,
    holdout: pd.DataFrame,
    scored: Scored,
    verdict: GateDecision,
    validation: ValidationSummary,
    tags: dict[str, str],
) -> registry.LoggedRun:
    """One MLflow run with the pipeline, metrics, gate report, reference profile, spec and GX result."""
    reason, model = tags["reason"], spec.name
    # The profile's scores come from the model being registered (the refit one after a refit).
    scores = training.predict_scores(trained.pipeline, holdout, spec.feature_names) if trained.refit else None
    profile = build_profile(
        trained.rows[spec.feature_names],
        spec.numeric,
        spec.categorical,
        bins=spec.triggers.drift.bins,
        labels=training.labels(trained.rows, spec),
        scores=scored.challenger if scores is None else scores,
        metrics=scored.holdout_metrics,
        task=spec.task,
        importance=feature_importance(trained.pipeline, spec.feature_names),  # drift impact (docs/drift.md)
    )
    mv = spec.triggers.drift.multivariate
    sample = multivariate.sample_bytes(
        trained.rows, spec.feature_names, spec.data.time_column, mv.reference_rows, spec.training.seed
    )
    return registry.log_run(
        get_settings(),
        model_name=model,
        pipeline=trained.pipeline,
        example=holdout[spec.feature_names].head(50),
        params={
            "estimator": spec.training.estimator.model_dump(),
            "window": spec.training.window.model_dump(),
            "holdout": spec.training.holdout.model_dump(),
            "data_version": tags["data_version"],
            "reason": reason,
        },
        metrics={
            **scored.holdout_metrics,
            "gate_ci_low": verdict.ci_low,
            "gate_ci_high": verdict.ci_high,
            f"champion_{spec.metric}": verdict.champion,
            "latency_p95_ms": scored.latency_p95_ms,
            "train_seconds": trained.seconds,
            "train_cpu_seconds": trained.cpu_seconds,
            "train_rows": float(len(trained.rows)),
        },
        artifacts={
            "gate_report.json": verdict.model_dump_json(indent=2),
            "gate_report.md": gate.to_markdown(verdict, title=f"Gate report: {model} ({reason})"),
            lineage.REFERENCE_PROFILE: profile.model_dump_json(),
            multivariate.REFERENCE_SAMPLE: sample,  # the multivariate drift detector's reference rows
            # CBPE: calibrated on the hold-out the challenger never saw (also used for a refit model)
            **estimate.calibration_artifacts(spec.task, scored.y, scored.challenger),
            "spec.yaml": yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False),
            "gx_result.json": validation.model_dump_json(indent=2),
        },
        run_name=f"{model}-{reason}-{datetime.now(UTC):%Y%m%dT%H%M%S}",
        tags={
            "evergreen.model": model,
            "evergreen.reason": reason,
            "prefect_flow_run_id": tags["prefect_flow_run_id"],
        },
    )
