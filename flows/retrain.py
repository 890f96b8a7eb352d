"""The retrain flow: pinned DVC data -> GX -> time split -> train -> champion vs challenger -> gate -> registry.

Every trained model is registered with its lineage; only a passing gate moves the `champion` alias.
Any failure before the alias move leaves the registry and the champion exactly as they were.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any, Literal

import yaml
from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import BaseModel

from adapters import mlflow_registry as model_registry
from adapters.dvc_registry import frame_md5
from evergreen import gate, training
from evergreen.drift import build_profile
from evergreen.metrics import metric_value
from evergreen.settings import code_git_sha, get_settings
from tasks.steps import (
    ValidationFailed,
    champion_scores,
    check_cooldown,
    emit_event,
    load_model_spec,
    publish_markdown,
    pull_data,
    train_model,
    validate_frame,
)

Reason = Literal["manual", "schedule", "drift", "performance", "volume", "backfill"]


class RetrainOutcome(BaseModel):
    """What `evergreen retrain --json` prints and the flow returns."""

    model: str
    status: Literal["promoted", "rejected", "skipped"]
    reason: str
    version: str | None = None
    champion_version: str | None = None
    previous_champion: str | None = None
    decision: dict[str, Any] | None = None
    metrics: dict[str, float | None] = {}
    data_version: str | None = None
    run_id: str | None = None
    detail: str = ""
    seconds: dict[str, float] = {}


def _artifact_key(model: str) -> str:
    return f"gate-{model}".lower().replace("_", "-")


@flow(name="retrain", log_prints=False)
def retrain(
    model: str,
    reason: Reason = "manual",
    data_rev: str | None = None,
    trigger_event_id: str | None = None,
    force: bool = False,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Retrain `model` on a pinned data version and promote it only if it passes the gate.

    Args:
        model: name of `models/<model>.yaml`.
        reason: why this run happened; recorded on the model version and in events.
        data_rev: registry git rev to train on (default: the registry's HEAD).
        trigger_event_id: id of the Prefect event that started this run, if any.
        force: train even inside the cooldown.
        overrides: dotted spec keys to override for this run, e.g. {"training.window.kind": "all"}.
    """
    log = get_run_logger()
    settings = get_settings()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    def lap(name: str, start: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - start, 3)
        return now

    spec = load_model_spec(model, overrides)
    decision = check_cooldown(spec, force=force, reason=reason)
    if not decision.retrain:
        log.info("skipping retrain of %s: %s", model, decision.detail)
        emit_event(
            "evergreen.retrain.skipped",
            model,
            {"reason": decision.reason, "detail": decision.detail, "requested_reason": reason,
             "trigger_event_id": trigger_event_id or ""},
        )
        return RetrainOutcome(model=model, status="skipped", reason=decision.reason, detail=decision.detail).model_dump()
    t = lap("setup", t0)

    frame, version = pull_data(spec, data_rev)
    t = lap("dvc_pull", t)
    gx_result = validate_frame(frame, spec, training_set=True)
    t = lap("gx_validate", t)
    if not gx_result.success:
        raise ValidationFailed(f"training set at data_version {version.id} failed validation; nothing registered.\n"
                               + gx_result.message())

    split = training.split(frame, spec)
    pipe, train_seconds = train_model(spec, split.train, split.weights)
    t = lap("train", t)

    y = training.labels(split.holdout, spec)
    chal = training.predict_scores(pipe, split.holdout, spec.feature_names)
    champ, champ_scores = champion_scores(spec, split.holdout)
    latency = training.batch_latency_p95_ms(pipe, split.holdout[spec.feature_names], spec.gate.latency_batch_rows)
    verdict = gate.decide(
        spec.gate, spec.metric, y, chal, champ_scores,
        champion_version=champ.version if champ else None, latency_p95_ms=latency,
    )
    t = lap("score_and_gate", t)
    log.info("gate %s: %s", "passed" if verdict.passed else "rejected", verdict.summary)

    holdout_metrics = {f"holdout_{m}": metric_value(m, y, chal) for m in ("roc_auc", "accuracy", "logloss")}
    train_rows, profile_scores = split.train, chal
    refit = verdict.passed and spec.training.refit
    if refit:
        # The gate judged the twin trained without the hold-out; the registered model also learns from it.
        train_rows, weights = training.refit_rows(frame, spec)
        pipe, refit_seconds = train_model.with_options(name="refit_model")(spec, train_rows, weights)
        train_seconds += refit_seconds
        profile_scores = training.predict_scores(pipe, split.holdout, spec.feature_names)
        t = lap("refit", t)
    profile = build_profile(
        train_rows[spec.feature_names], spec.numeric, spec.categorical, bins=spec.triggers.drift.bins,
        labels=training.labels(train_rows, spec), scores=profile_scores, metrics=holdout_metrics,
    )
    bounds = training.Split(train=train_rows, holdout=split.holdout, weights=None).bounds(spec.data.time_column)
    run_id_prefect = str(flow_run.get_id() or "")
    report_md = gate.to_markdown(verdict, title=f"Gate report: {model} ({reason})")
    lineage = {
        "data_version": version.id,
        "data_rev": version.rev,
        "data_md5": version.md5,
        "data_path": version.path,
        "data_rows": str(version.rows),
        "data_registry": settings.registry_path,
        **bounds,
        "train_rows": str(len(train_rows)),
        "train_rows_md5": frame_md5(train_rows),
        "refit": str(refit).lower(),
        "holdout_rows": str(len(split.holdout)),
        "window": model_registry.as_tag(spec.training.window.model_dump(exclude_none=True)),
        "reason": reason,
        "trigger_event_id": trigger_event_id or "",
        "prefect_flow_run_id": run_id_prefect,
        "code_git_sha": code_git_sha(),
        "gx_result": model_registry.as_tag(
            {"success": gx_result.success, "suite": gx_result.suite, "evaluated": gx_result.evaluated,
             "rows": gx_result.rows, "failures": len(gx_result.failures)}
        ),
        "gate_passed": str(verdict.passed).lower(),
        "gate_decision": model_registry.as_tag(verdict.model_dump()),
        "train_seconds": f"{train_seconds:.3f}",
        "reference_profile": "reference_profile.json",
    }
    logged = model_registry.log_run(
        settings,
        model_name=model,
        pipeline=pipe,
        example=split.holdout[spec.feature_names].head(50),
        params={"estimator": spec.training.estimator.model_dump(), "window": spec.training.window.model_dump(),
                "holdout": spec.training.holdout.model_dump(), "data_version": version.id, "reason": reason},
        metrics={**holdout_metrics, "gate_ci_low": verdict.ci_low, "gate_ci_high": verdict.ci_high,
                 f"champion_{spec.metric}": verdict.champion, "latency_p95_ms": latency,
                 "train_seconds": train_seconds, "train_rows": float(len(train_rows))},
        artifacts={
            "gate_report.json": verdict.model_dump_json(indent=2),
            "gate_report.md": report_md,
            "reference_profile.json": profile.model_dump_json(),
            "spec.yaml": yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False),
            "gx_result.json": gx_result.model_dump_json(indent=2),
        },
        run_name=f"{model}-{reason}-{datetime.now(UTC):%Y%m%dT%H%M%S}",
        tags={"evergreen.model": model, "evergreen.reason": reason, "prefect_flow_run_id": run_id_prefect},
    )
    t = lap("mlflow_log", t)

    version_no = model_registry.register_version(
        settings, model, logged, tags=lineage, description=f"{reason}: {verdict.summary}"[:1000]
    )
    previous = champ.version if champ else None
    try:
        if verdict.passed:
            model_registry.set_alias(settings, model, model_registry.CHAMPION, version_no, reason=reason,
                                     previous=previous)
            status: Literal["promoted", "rejected"] = "promoted"
        else:
            model_registry.set_alias(settings, model, model_registry.CHALLENGER, version_no, reason=reason,
                                     previous=None)
            model_registry.tag_version(settings, model, version_no, {"rejection_reason": verdict.summary[:5000]})
            status = "rejected"
    except Exception:
        # Never half-register: drop the new version and put the champion back where it was.
        log.exception("alias update failed; removing version %s and restoring champion %s", version_no, previous)
        model_registry.delete_version(settings, model, version_no)
        if previous:
            model_registry.client(settings).set_registered_model_alias(model, model_registry.CHAMPION, previous)
        raise
    t = lap("mlflow_register", t)

    current = version_no if verdict.passed else previous
    payload = {
        "version": version_no, "reason": reason, "trigger_event_id": trigger_event_id or "",
        "data_version": version.id, "metric": spec.metric, "challenger": verdict.challenger,
        "champion": verdict.champion, "ci_low": verdict.ci_low, "ci_high": verdict.ci_high,
        "passed": verdict.passed, "champion_version": current or "", "previous_champion": previous or "",
        "summary": verdict.summary,
    }
    emit_event("evergreen.model.registered", model, payload)
    emit_event("evergreen.model.promoted" if verdict.passed else "evergreen.model.rejected", model, payload)
    lineage_md = "\n".join(f"| {k} | `{v}` |" for k, v in lineage.items() if k not in ("gate_decision",))
    publish_markdown(
        _artifact_key(model),
        f"{report_md}\n## Lineage of v{version_no}\n\n| tag | value |\n|---|---|\n{lineage_md}\n",
        f"{model} v{version_no}: {status}",
    )
    lap("events_artifacts", t)
    timings["total"] = round(time.perf_counter() - t0, 3)
    log.info("timings (s): %s", json.dumps(timings))
    return RetrainOutcome(
        model=model, status=status, reason=reason, version=version_no, champion_version=current,
        previous_champion=previous, decision=verdict.model_dump(),
        metrics={**holdout_metrics, f"champion_{spec.metric}": verdict.champion, "latency_p95_ms": latency,
                 "train_seconds": train_seconds},
        data_version=version.id, run_id=logged.run_id, detail=verdict.summary, seconds=timings,
    ).model_dump()

