"""The monitor flow: the champion's reference profile vs new rows -> drift (and performance) -> events.

Always emits `evergreen.drift.measured`; emits `evergreen.drift.detected` and/or
`evergreen.performance.degraded` when the spec's triggers say so. The retrain deployment's triggers
(prefect.yaml) turn those into retrain runs. docs/events.md lists every payload field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from adapters import batch_files as batches
from adapters import mlflow_registry as model_registry
from adapters.dvc_registry import RegistryError, frame_md5
from evergreen import training
from evergreen.drift import DriftReport, ReferenceProfile, measure_drift
from evergreen.performance import PerformanceReport, batch_degraded, measure_performance
from evergreen.policy import drift_check
from evergreen.settings import get_settings
from evergreen.spec import ModelSpec
from evergreen.validation import coerce_batch
from tasks import monitoring
from tasks.steps import emit_event, load_model_spec, publish_markdown, publish_table


class PerformanceState(BaseModel):
    """This batch's performance and the champion's run of consecutive degraded batches."""

    report: PerformanceReport
    batch_degraded: bool
    streak: int
    required: int
    counted: bool
    degraded: bool
    enabled: bool


class MonitorOutcome(BaseModel):
    """What `evergreen monitor --json` prints and the flow returns."""

    model: str
    status: Literal["measured", "no-champion", "no-data"]
    champion_version: str | None = None
    source: str
    selection: str
    data_version: str = ""
    data_rev: str = ""
    n_rows: int = 0
    labelled_rows: int = 0
    drift: DriftReport | None = None
    drift_detected: bool = False
    performance: PerformanceState | None = None
    performance_degraded: bool = False
    events: dict[str, str] = {}
    detail: str = ""


def _artifact_key(model: str) -> str:
    return f"drift-{model}".lower().replace("_", "-")


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def find_champion(model: str) -> model_registry.Champion | None:
    return model_registry.get_champion(model_registry.client(get_settings()), model)


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def load_profile(champ: model_registry.Champion) -> ReferenceProfile:
    return monitoring.load_profile(get_settings(), champ)


@task(cache_policy=NO_CACHE)
def select_rows(
    spec: ModelSpec, champ: model_registry.Champion | None, data_rev: str | None
) -> monitoring.Rows:
    try:
        rows = monitoring.select_rows(get_settings(), spec, champ, data_rev)
    except RegistryError as exc:
        if data_rev:  # an explicit rev that holds no data is the caller's mistake
            raise
        # e.g. the cron monitor of a model nothing has been ingested for yet: report it, do not fail
        return monitoring.Rows(pd.DataFrame(), str(exc), "none")
    get_run_logger().info(
        "measuring %s rows: %s (data_version %s)", len(rows.frame), rows.source, rows.data_version
    )
    return rows


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def champion_batch_scores(spec: ModelSpec, champ: model_registry.Champion, frame: Any) -> np.ndarray | None:
    """The champion's scores on the batch; None when the batch lacks a feature the model needs."""
    pipe = model_registry.load_sklearn(champ.model_uri)
    missing = sorted(set(pipe.feature_names_in_) - set(frame.columns))
    if missing or frame.empty:
        get_run_logger().warning("not scoring the batch: missing columns %s", missing)
        return None
    return training.predict_scores(pipe, frame)


@task(cache_policy=NO_CACHE)
def update_streak(
    model: str, champ: model_registry.Champion, key: str, degraded: bool, value: float | None
) -> monitoring.Streak:
    return monitoring.update_streak(get_settings(), model, champ, key, degraded, value)


def _reference_metric(profile: ReferenceProfile, metric: str) -> float | None:
    for key in (f"holdout_{metric}", metric):
        if key in profile.metrics:
            return profile.metrics[key]
    return None


def _drift_numbers(report: DriftReport, *, only_drifted: bool) -> dict[str, Any]:
    feats = {
        name: {
            "statistic": f.statistic,
            "value": f.value,
            "threshold": f.threshold,
            "p_value": f.p_value,
            "psi": f.psi,
            "drifted": f.drifted,
        }
        for name, f in report.features.items()
        if f.drifted or not only_drifted
    }
    out: dict[str, Any] = {
        "dataset_drift": report.dataset_drift,
        "drift_score": report.drift_score,
        "drift_share": report.drift_share,
        "drifted_features": report.drifted_features,
        "critical_drifted": report.critical_drifted,
        "statistic": report.statistic,
        "threshold": report.threshold,
        "share_threshold": report.share,
        "below_min_rows": report.below_min_rows,
        "features": feats,
        "summary": report.summary,
    }
    if report.score is not None:
        out["score_drift"] = {
            "psi": report.score.psi,
            "ks": report.score.ks,
            "drifted": report.score.drifted,
            "batch_mean": report.score.batch_mean,
            "reference_mean": report.score.reference_mean,
        }
    return out


def _perf_numbers(state: PerformanceState) -> dict[str, Any]:
    r = state.report
    return {
        "metric": r.metric,
        "value": r.value,
        "reference": r.reference,
        "drop": r.drop,
        "ci_low": r.ci_low,
        "ci_high": r.ci_high,
        "confidence": r.confidence,
        "floor": r.floor,
        "below_floor": r.below_floor,
        "labelled_rows": r.n,
        "batch_degraded": state.batch_degraded,
        "streak": state.streak,
        "required": state.required,
        "degraded": state.degraded,
    }


def _markdown(out: MonitorOutcome) -> str:
    lines = [
        f"# Monitor: {out.model} (champion v{out.champion_version})",
        "",
        f"- rows: {out.n_rows} ({out.source})",
        f"- data_version: `{out.data_version or '-'}`",
    ]
    if out.drift is not None:
        d = out.drift
        lines.append(
            f"- drift: **{'DETECTED' if out.drift_detected else 'none'}**; score {d.drift_score}, "
            f"share {d.drift_share:.2f}, drifted {d.drifted_features or '[]'}; {d.summary}"
        )
    if out.performance is not None:
        p = out.performance
        lines.append(
            f"- {p.report.metric}: {p.report.value} CI [{p.report.ci_low}, {p.report.ci_high}], floor "
            f"{p.report.floor}, reference {p.report.reference}; degraded batches in a row: "
            f"{p.streak}/{p.required} -> **{'DEGRADED' if out.performance_degraded else 'ok'}**"
        )
    lines.append(f"- events: {', '.join(out.events) or '-'}")
    return "\n".join(lines) + "\n"


@flow(name="monitor", log_prints=False)
def monitor(model: str, batch: str | None = None, data_rev: str | None = None) -> dict[str, Any]:
    """Measure drift (and, where labels exist, performance) of `model`'s champion on new rows.

    Args:
        model: name of `models/<model>.yaml`.
        batch: a CSV or parquet file to measure instead of registry rows.
        data_rev: data registry rev; measures the rows that rev's ingest added. Empty or omitted: the
            registry HEAD's rows newer than the champion's hold-out (what the champion has never seen).
    """
    log = get_run_logger()
    if batch and data_rev:
        raise ValueError("give either batch or data_rev, not both")
    spec = load_model_spec(model)
    champ = find_champion(model)

    if batch:
        frame = coerce_batch(batches.read_batch(Path(batch)), spec)
        rows = monitoring.Rows(frame, str(batch), "file")
    else:
        rows = select_rows(spec, champ, data_rev or None)
        if rows.selection == "none":
            detail = f"nothing to measure for {model}: {rows.source}"
            log.warning(detail)
            ev = emit_event(
                "evergreen.drift.measured",
                model,
                {"champion_version": champ.version if champ else "", "n_rows": 0, "note": detail},
            )
            return MonitorOutcome(
                model=model,
                status="no-data",
                source="",
                selection="none",
                champion_version=champ.version if champ else None,
                detail=detail,
                events={"evergreen.drift.measured": ev},
            ).model_dump(mode="json")
    frame = rows.frame
    base: dict[str, Any] = {
        "source": rows.source,
        "selection": rows.selection,
        "data_version": rows.data_version,
        "data_rev": rows.data_rev,
        "n_rows": len(frame),
    }

    if champ is None:
        detail = (
            f"no champion for {model} yet: nothing to compare against (train one with `evergreen retrain`)"
        )
        log.warning(detail)
        ev = emit_event("evergreen.drift.measured", model, {**base, "champion_version": "", "note": detail})
        return MonitorOutcome(
            model=model, status="no-champion", detail=detail, events={"evergreen.drift.measured": ev}, **base
        ).model_dump(mode="json")

    profile = load_profile(champ)
    scores = champion_batch_scores(spec, champ, frame)
    report = measure_drift(profile, frame, spec.triggers.drift, features=spec.features, scores=scores)
    decision = drift_check(report.dataset_drift, report.summary, report.drift_score)
    drift_detected = decision.retrain and spec.triggers.drift.enabled

    perf: PerformanceState | None = None
    target = spec.data.target
    labelled = frame[frame[target].notna()] if target in frame.columns else frame.iloc[0:0]
    if scores is not None and len(labelled):
        trig = spec.triggers.performance
        mask = frame[target].notna().to_numpy()
        preport = measure_performance(
            spec.metric,
            training.labels(labelled, spec),
            scores[mask],
            reference=_reference_metric(profile, spec.metric),
            floor=trig.floor if trig.floor is not None else spec.gate.floor,
            alpha=trig.alpha,
        )
        bad = batch_degraded(preport, trig)
        key = f"{rows.data_version}|{frame_md5(frame)}"
        streak = update_streak(model, champ, key, bad, preport.value)
        perf = PerformanceState(
            report=preport,
            batch_degraded=bad,
            streak=streak.value,
            required=trig.consecutive,
            counted=streak.counted,
            degraded=trig.enabled and streak.value >= trig.consecutive,
            enabled=trig.enabled,
        )

    out = MonitorOutcome(
        model=model,
        status="measured",
        champion_version=champ.version,
        labelled_rows=len(labelled),
        drift=report,
        drift_detected=drift_detected,
        performance=perf,
        performance_degraded=bool(perf and perf.degraded),
        detail=decision.detail,
        **base,
    )
    publish_table(
        _artifact_key(model),
        report.to_rows(),
        f"{model} v{champ.version}: drift {'DETECTED' if drift_detected else 'none'} on {len(frame)} rows",
    )

    common = {**base, "champion_version": champ.version}
    measured = {
        **common,
        **_drift_numbers(report, only_drifted=False),
        "performance": _perf_numbers(perf) if perf else None,
        "drift_detected": drift_detected,
        "performance_degraded": out.performance_degraded,
    }
    out.events["evergreen.drift.measured"] = emit_event("evergreen.drift.measured", model, measured)
    if drift_detected:
        out.events["evergreen.drift.detected"] = emit_event(
            "evergreen.drift.detected", model, {**common, **_drift_numbers(report, only_drifted=True)}
        )
    if perf is not None and perf.degraded:
        out.events["evergreen.performance.degraded"] = emit_event(
            "evergreen.performance.degraded", model, {**common, **_perf_numbers(perf)}
        )
    publish_markdown(
        f"monitor-{model}".lower().replace("_", "-"), _markdown(out), f"{model}: monitor summary"
    )
    log.info(
        "monitor %s v%s: drift %s, performance %s; events %s",
        model,
        champ.version,
        "DETECTED" if drift_detected else "none",
        "n/a" if perf is None else ("DEGRADED" if perf.degraded else "ok"),
        sorted(out.events),
    )
    return out.model_dump(mode="json")
