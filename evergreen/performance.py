"""Performance decay on labelled batches, with a significance test before anything is called "below".

A batch's metric is compared with a floor (and optionally with the champion's hold-out metric) through
a one-sided confidence bound: accuracy uses the Wilson score interval, every other metric (ROC AUC,
log loss, macro-F1, RMSE, MAE, R²) a percentile bootstrap (vectorised over resamples via evergreen.metrics.resampled_metric). A batch is
`below_floor` only when even the optimistic bound misses the floor, so a small, noisy batch that
happens to score low is not called degraded. The PerformanceTrigger rule then asks for K consecutive
degraded batches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field
from scipy.stats import norm

from evergreen.metrics import metric_value, percentile_ci, resample_chunks, resampled_metric
from evergreen.spec import HIGHER_IS_BETTER, PerformanceTrigger


class PerformanceReport(BaseModel):
    """One labelled batch's metric against the floor and the champion's hold-out metric."""

    metric: str
    value: float | None = Field(
        description="The metric on this batch (None where undefined, e.g. AUC of one class)."
    )
    reference: float | None = Field(description="The champion's hold-out metric.")
    difference: float | None = Field(description="value - reference (raw, not oriented).")
    drop: float | None = Field(description="How much worse than the reference (positive = worse), oriented.")
    ci_low: float | None
    ci_high: float | None
    confidence: float = Field(
        description="Two-sided level of [ci_low, ci_high]; each side is one-sided 1 - alpha."
    )
    method: str = Field(description="'wilson' or 'bootstrap'.")
    floor: float | None
    below_floor: bool = Field(description="Significantly worse than the floor (optimistic bound misses it).")
    n: int
    n_positive: int | None = Field(description="Positive labels in the batch (binary only).")
    alpha: float
    n_resamples: int = 0
    higher_is_better: bool

    @property
    def optimistic(self) -> float | None:
        """The bound on the 'better' side: ci_high when higher is better, ci_low for logloss/rmse/mae."""
        return self.ci_high if self.higher_is_better else self.ci_low

    def significant_drop(self, max_drop: float) -> bool:
        """Significantly more than `max_drop` worse than the reference (the optimistic bound included)."""
        if self.reference is None or self.optimistic is None:
            return False
        if self.higher_is_better:
            return self.optimistic < self.reference - max_drop
        return self.optimistic > self.reference + max_drop


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (two-sided at `confidence`)."""
    if n <= 0:
        return float("nan"), float("nan")
    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_interval(
    metric: str,
    y: np.ndarray,
    scores: np.ndarray,
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    chunk: int = 250,
) -> tuple[float, float, int]:
    """Percentile bootstrap CI of the metric (deterministic by seed); returns (low, high, valid resamples)."""
    vals = [
        resampled_metric(metric, y, scores, idx) for idx in resample_chunks(len(y), n_resamples, seed, chunk)
    ]
    _, lo, hi, used = percentile_ci(vals, confidence)
    return lo, hi, used


def _opt(x: float) -> float | None:
    return x if math.isfinite(x) else None


def measure_performance(
    metric: str,
    y: np.ndarray,
    scores: np.ndarray,
    *,
    reference: float | None,
    floor: float | None,
    alpha: float = 0.05,
    n_resamples: int = 1000,
    seed: int = 0,
) -> PerformanceReport:
    """The batch metric with a one-sided (1 - alpha) bound on each side, and whether it is below the floor.

    The interval is two-sided at 1 - 2 * alpha, so each of its ends is a one-sided 1 - alpha bound.
    For accuracy it is the Wilson interval; for the other metrics a percentile bootstrap.
    `below_floor` means worse than the floor with significance alpha: ci_high < floor when higher is
    better, ci_low > floor (a ceiling) for logloss, rmse and mae. `y` and `scores` take the forms of
    evergreen.metrics (per task type).
    """
    if metric not in HIGHER_IS_BETTER:
        raise ValueError(f"unknown metric {metric!r}")
    if not 0 < alpha < 0.5:
        raise ValueError("alpha must be in (0, 0.5)")
    y = np.asarray(y)
    scores = np.asarray(scores, dtype=float)
    if y.shape != scores.shape[: y.ndim] or scores.ndim > 2:
        raise ValueError(f"labels {y.shape} and scores {scores.shape} differ in shape")
    classes = metric not in ("rmse", "mae", "r2")
    y = y.astype(np.int64) if classes else y.astype(float)
    higher = HIGHER_IS_BETTER[metric]
    confidence = 1 - 2 * alpha
    n = int(y.size)
    value = metric_value(metric, y, scores) if n else float("nan")
    used = 0
    if n == 0:
        lo = hi = float("nan")
        method = "wilson" if metric == "accuracy" else "bootstrap"
    elif metric == "accuracy":
        hits = scores.argmax(axis=1) == y if scores.ndim == 2 else (scores >= 0.5) == (y == 1)
        lo, hi = wilson_interval(int(hits.sum()), n, confidence)
        method = "wilson"
    else:
        lo, hi, used = bootstrap_interval(
            metric, y, scores, confidence=confidence, n_resamples=n_resamples, seed=seed
        )
        method = "bootstrap"
    v, low, high = _opt(value), _opt(lo), _opt(hi)
    below = False
    if floor is not None and v is not None and low is not None and high is not None:
        below = high < floor if higher else low > floor
    diff = v - reference if v is not None and reference is not None else None
    return PerformanceReport(
        metric=metric,
        value=v,
        reference=reference,
        difference=diff,
        drop=None if diff is None else (-diff if higher else diff),
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        method=method,
        floor=floor,
        below_floor=below,
        n=n,
        n_positive=int(y.sum()) if classes and scores.ndim == 1 else None,
        alpha=alpha,
        n_resamples=used,
        higher_is_better=higher,
    )


def consecutive_degraded(history: Sequence[bool], k: int) -> bool:
    """True when the last `k` entries of a chronological history are all True."""
    if k < 1:
        raise ValueError("k must be at least 1")
    return len(history) >= k and all(history[-k:])


class PerformanceDecision(BaseModel):
    """The PerformanceTrigger rule applied to a chronological history of batch reports."""

    degraded: bool
    consecutive: int = Field(description="Length of the current run of degraded batches.")
    required: int
    batches: list[bool] = Field(description="Per batch: below the floor, or significantly over max_drop.")
    reasons: list[str]


def batch_degraded(report: PerformanceReport, trigger: PerformanceTrigger) -> bool:
    """One batch is degraded when significantly below the floor or significantly more than max_drop worse."""
    if report.below_floor:
        return True
    return trigger.max_drop is not None and report.significant_drop(trigger.max_drop)


def evaluate_trigger(
    history: Sequence[PerformanceReport], trigger: PerformanceTrigger, *, prior: int = 0
) -> PerformanceDecision:
    """Degraded when the last `trigger.consecutive` batches were each degraded (see batch_degraded).

    The floor each report was measured against is `trigger.floor`, or the gate floor when that is
    unset; pass it to measure_performance together with `alpha=trigger.alpha`.

    `prior` is the run of degraded batches that came before `history`. The backtester passes the
    whole history (prior 0); production keeps only the run length between monitor runs and passes
    one batch with the stored run as `prior` (evergreen.monitoring). Both are this one rule.
    """
    if prior < 0:
        raise ValueError("prior must be >= 0")
    flags = [batch_degraded(r, trigger) for r in history]
    run = 0
    for flag in reversed(flags):
        if not flag:
            break
        run += 1
    if run == len(flags):  # every batch in `history` was degraded: the earlier run continues
        run += prior
    k = trigger.consecutive
    if k < 1:
        raise ValueError("k must be at least 1")
    degraded = trigger.enabled and run >= k
    return PerformanceDecision(
        degraded=degraded,
        consecutive=run,
        required=k,
        batches=flags,
        reasons=_reasons(history, trigger, degraded, run, prior),
    )


def _reasons(
    history: Sequence[PerformanceReport], trigger: PerformanceTrigger, degraded: bool, run: int, prior: int
) -> list[str]:
    if not trigger.enabled:
        return ["performance trigger disabled"]
    if not history and not prior:
        return ["no labelled batches yet"]
    reasons: list[str] = []
    if history:
        last = history[-1]
        reasons.append(
            f"{last.metric}={last.value if last.value is None else round(last.value, 4)} "
            f"CI [{last.ci_low if last.ci_low is None else round(last.ci_low, 4)}, "
            f"{last.ci_high if last.ci_high is None else round(last.ci_high, 4)}] "
            f"floor={last.floor} reference={last.reference}"
        )
    verdict = "degraded" if degraded else "not degraded"
    reasons.append(f"{verdict}: {run} consecutive degraded batch(es), {trigger.consecutive} required")
    return reasons
