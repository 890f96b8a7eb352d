"""The estimated-performance trigger (`triggers.estimated`): the CBPE estimate against floor and hold-out.

A batch is degraded when the estimate is significantly low: its optimistic (upper, one-sided
1 - alpha) bound is below `floor`, or more than `max_drop` below the champion's hold-out metric. The
trigger fires after `consecutive` degraded batches in a row. The same rule as the performance trigger
(evergreen.performance), on an estimate instead of labels, so it can fire when a batch arrives rather
than when its labels do.

Production keeps only the run length between monitor runs (tags on the champion's version, like the
performance streak); the backtester keeps it in memory. Both call `step`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel

from evergreen.estimate import Calibrator, Estimate, estimate
from evergreen.spec import EstimatedPerformanceTrigger


class EstimateVerdict(BaseModel):
    """One batch's estimate, whether it is degraded, and the run of degraded batches it belongs to."""

    estimate: Estimate
    reference: float | None
    floor: float | None
    max_drop: float | None
    batch_degraded: bool
    streak: int
    required: int
    degraded: bool
    counted: bool
    last_batch: str = ""
    reasons: list[str]


def batch_degraded(est: Estimate, trig: EstimatedPerformanceTrigger, reference: float | None) -> list[str]:
    """Why the batch is degraded (empty: it is not); each reason names its rule."""
    if est.high is None:
        return []
    out = []
    if trig.floor is not None and est.high < trig.floor:
        out.append(f"upper bound {est.high:.4f} < floor {trig.floor}")
    if trig.max_drop is not None and reference is not None and est.high < reference - trig.max_drop:
        out.append(f"upper bound {est.high:.4f} < hold-out {reference:.4f} - max_drop {trig.max_drop}")
    return out


def step(
    cal: Calibrator,
    scores: np.ndarray,
    trig: EstimatedPerformanceTrigger,
    *,
    prior: int = 0,
    prior_batch: str = "",
    batch_key: str = "",
    seed: int = 0,
) -> EstimateVerdict:
    """The estimate of one batch through the rule. `prior` is the run of degraded batches before it.

    A batch already counted (its key is `prior_batch`) does not extend the run a second time.
    """
    est = estimate(cal, scores, trig.metric, alpha=trig.alpha, seed=seed)
    reference = cal.reference.get(trig.metric)
    why = batch_degraded(est, trig, reference)
    counted = not (batch_key and batch_key == prior_batch)
    # a degraded batch extends the run, a good one ends it; a re-measured batch changes nothing
    run = (prior + 1 if why else 0) if counted else prior
    degraded = trig.enabled and run >= trig.consecutive
    value = "undefined" if est.value is None else f"{est.value:.4f}"
    summary = f"estimated {trig.metric} {value} [{est.low}, {est.high}] on {est.n} rows"
    verdict = "degraded" if degraded else "not degraded"
    return EstimateVerdict(
        estimate=est,
        reference=reference,
        floor=trig.floor,
        max_drop=trig.max_drop,
        batch_degraded=bool(why),
        streak=run,
        required=trig.consecutive,
        degraded=degraded,
        counted=counted,
        last_batch=batch_key if counted else prior_batch,
        reasons=[
            summary,
            *why,
            f"{verdict}: {run} consecutive degraded estimate(s), {trig.consecutive} required",
        ],
    )


def payload(verdict: EstimateVerdict, context: dict[str, Any]) -> dict[str, Any]:
    """`evergreen.performance.estimated`: the estimate, its bound, the hold-out reference and the verdict."""
    e = verdict.estimate
    names = {"value": "estimate", "low": "lower", "high": "upper"}  # the payload's names for the interval
    fields = ("reference", "floor", "max_drop", "batch_degraded", "streak", "required", "degraded")
    return {
        **context,
        **{names.get(k, k): v for k, v in e.model_dump(exclude={"n"}).items()},
        **verdict.model_dump(include=set(fields)),
        "summary": "; ".join(verdict.reasons),
    }
