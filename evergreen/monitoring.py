"""The monitor's assessment: one batch against the champion's reference profile -> trigger decisions.

Pure: the monitor flow fetches the champion, its profile, the rows and the champion's scores, calls
`assess`, then persists the returned streak state and emits the returned event payloads. The trigger
rules are the ones the backtester uses (`policy.drift_check`, `performance.evaluate_trigger`,
`policy.performance_check`), so a backtest replays what the monitor decides
(tests/unit/test_trigger_parity.py).

The performance trigger needs K consecutive degraded batches. The backtester keeps the whole history
in memory; production keeps only the run length (`StreakState`, stored as tags on the champion's
model version) and passes it back in as `evaluate_trigger`'s `prior`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel

from evergreen import training
from evergreen.drift import DriftReport, ReferenceProfile, measure_drift
from evergreen.drift.impact import TOP_IMPACT
from evergreen.events import Event
from evergreen.performance import (
    PerformanceDecision,
    PerformanceReport,
    batch_degraded,
    evaluate_trigger,
    measure_performance,
)
from evergreen.policy import Decision, drift_check, performance_check
from evergreen.spec import DriftTrigger, ModelSpec


class StreakState(BaseModel):
    """The performance trigger's state between monitor runs: the current run of degraded batches."""

    value: int = 0
    last_batch: str = ""  # key of the last counted batch, so a re-measured batch is not counted twice


class PerformanceState(BaseModel):
    """This batch's performance and the champion's run of consecutive degraded batches."""

    report: PerformanceReport
    batch_degraded: bool
    streak: int
    required: int
    counted: bool
    degraded: bool
    enabled: bool


class MonitorAssessment(BaseModel):
    """Everything the monitor decided about one batch; the flow only persists and announces it."""

    drift: DriftReport
    drift_decision: Decision
    performance: PerformanceState | None = None
    performance_decision: Decision | None = None
    labelled_rows: int = 0
    streak: StreakState
    streak_changed: bool = False
    events: dict[str, dict[str, Any]]

    @property
    def drift_detected(self) -> bool:
        return self.drift_decision.retrain

    @property
    def performance_degraded(self) -> bool:
        return self.performance_decision is not None and self.performance_decision.retrain


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
    estimate: dict[str, Any] | None = None  # the performance.estimated payload (triggers.estimated)
    events: dict[str, str] = {}
    detail: str = ""


def drift_decision(report: DriftReport, trigger: DriftTrigger) -> Decision:
    """The drift rule: the report's dataset-drift verdict, when the trigger is enabled."""
    decision = drift_check(report.dataset_drift, report.summary, report.drift_score)
    if trigger.enabled:
        return decision
    return decision.model_copy(update={"retrain": False})


def performance_step(
    report: PerformanceReport, spec: ModelSpec, prior: StreakState, batch_key: str
) -> tuple[PerformanceDecision, StreakState, bool]:
    """One batch through the performance rule: (decision, new state, counted).

    A batch already counted (same key as the state's last batch) does not advance the streak.
    """
    trig = spec.triggers.performance
    if batch_key and batch_key == prior.last_batch:
        return evaluate_trigger([], trig, prior=prior.value), prior, False
    decision = evaluate_trigger([report], trig, prior=prior.value)
    return decision, StreakState(value=decision.consecutive, last_batch=batch_key), True


def reference_metric(profile: ReferenceProfile, metric: str) -> float | None:
    """The champion's hold-out metric, as stored in its profile at registration."""
    for key in (f"holdout_{metric}", metric):
        if key in profile.metrics:
            return profile.metrics[key]
    return None


def _performance(
    spec: ModelSpec, profile: ReferenceProfile, frame: pd.DataFrame, scores: np.ndarray, mask: np.ndarray
) -> PerformanceReport:
    trig = spec.triggers.performance
    return measure_performance(
        spec.metric,
        training.labels(frame[mask], spec),
        scores[mask],
        reference=reference_metric(profile, spec.metric),
        floor=trig.floor if trig.floor is not None else spec.gate.floor,
        alpha=trig.alpha,
    )


def assess(
    spec: ModelSpec,
    profile: ReferenceProfile,
    frame: pd.DataFrame,
    *,
    scores: np.ndarray | None,
    prior: StreakState,
    batch_key: str,
    context: Mapping[str, Any],
    reference: pd.DataFrame | None = None,
) -> MonitorAssessment:
    """Drift and (where labels and scores exist) performance of one batch, with the event payloads.

    `context` (source, data_version, n_rows, champion_version, ...) goes into every payload.
    `reference` is the champion's reference sample (the multivariate drift detector's; None: not run).
    """
    # The prediction's own drift: probabilities, predicted classes or scaled predictions (the profile's kind).
    points = None if scores is None else profile.score_points(scores)
    report = measure_drift(
        profile, frame, spec.triggers.drift, features=spec.features, scores=points, reference=reference
    )
    ddec = drift_decision(report, spec.triggers.drift)
    target = spec.data.target
    mask = frame[target].notna().to_numpy() if target in frame.columns else np.zeros(len(frame), bool)
    labelled = int(mask.sum())
    perf: PerformanceState | None = None
    pdec: Decision | None = None
    state, counted = prior, False
    if scores is not None and labelled:
        preport = _performance(spec, profile, frame, scores, mask)
        trig = spec.triggers.performance
        decision, state, counted = performance_step(preport, spec, prior, batch_key)
        pdec = performance_check(decision.degraded, "; ".join(decision.reasons))
        perf = PerformanceState(
            report=preport,
            batch_degraded=batch_degraded(preport, trig),
            streak=decision.consecutive,
            required=decision.required,
            counted=counted,
            degraded=decision.degraded,
            enabled=trig.enabled,
        )
    events = event_payloads(dict(context), report, ddec.retrain, perf)
    return MonitorAssessment(
        drift=report,
        drift_decision=ddec,
        performance=perf,
        performance_decision=pdec,
        labelled_rows=labelled,
        streak=state,
        streak_changed=counted,
        events=events,
    )


# ---- event payloads (docs/events.md lists every field) ----


def drift_numbers(report: DriftReport, *, only_drifted: bool) -> dict[str, Any]:
    """The drift report as payload fields; `only_drifted` keeps just the drifted features."""
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
        **drift_explained(report, only_drifted=only_drifted),
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


def drift_explained(report: DriftReport, *, only_drifted: bool) -> dict[str, Any]:
    """Impact ranking, importance-weighted share and the multivariate verdict (docs/drift.md)."""
    ranked = [i for i in report.impact if i.drifted or not only_drifted][:TOP_IMPACT]
    return {
        "weighting": report.weighting,
        "weighted_share": report.weighted_share,
        "impact": [i.model_dump() for i in ranked],
        "multivariate": None if report.multivariate is None else report.multivariate.model_dump(),
    }


def performance_numbers(state: PerformanceState) -> dict[str, Any]:
    """The performance state as payload fields."""
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


def event_payloads(
    common: dict[str, Any], report: DriftReport, drift_detected: bool, perf: PerformanceState | None
) -> dict[str, dict[str, Any]]:
    """Event name -> payload: `drift.measured` always, `drift.detected` / `performance.degraded` when fired."""
    degraded = bool(perf and perf.degraded)
    out: dict[str, dict[str, Any]] = {
        Event.DRIFT_MEASURED.value: {
            **common,
            **drift_numbers(report, only_drifted=False),
            "performance": performance_numbers(perf) if perf else None,
            "drift_detected": drift_detected,
            "performance_degraded": degraded,
        }
    }
    if drift_detected:
        out[Event.DRIFT_DETECTED.value] = {**common, **drift_numbers(report, only_drifted=True)}
    if perf is not None and degraded:
        out[Event.PERFORMANCE_DEGRADED.value] = {**common, **performance_numbers(perf)}
    return out


def drift_lines(d: DriftReport) -> list[str]:
    """Markdown lines for the multivariate verdict and the features with the largest impact."""
    lines = []
    if d.multivariate is not None:
        m = d.multivariate
        top = ", ".join(f"{n} {g:.2f}" for n, g in m.top_features)
        lines.append(
            f"- multivariate: AUC {m.auc:.3f}, p {m.p_value:.2g} -> "
            f"**{'SIGNIFICANT' if m.significant else 'not significant'}**; separating features: {top or '-'}"
        )
    if d.impact:
        top = ", ".join(f"{i.name} {i.impact:.3g}{' (drifted)' if i.drifted else ''}" for i in d.impact[:5])
        lines.append(f"- impact (importance x effect): {top}")
    return lines


def markdown_summary(out: MonitorOutcome) -> str:
    """The monitor's Prefect artifact: one short markdown page."""
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
        lines += drift_lines(d)
    if out.performance is not None:
        p = out.performance
        lines.append(
            f"- {p.report.metric}: {p.report.value} CI [{p.report.ci_low}, {p.report.ci_high}], floor "
            f"{p.report.floor}, reference {p.report.reference}; degraded batches in a row: "
            f"{p.streak}/{p.required} -> **{'DEGRADED' if out.performance_degraded else 'ok'}**"
        )
    lines.append(f"- events: {', '.join(out.events) or '-'}")
    return "\n".join(lines) + "\n"
