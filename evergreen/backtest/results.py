"""What a replay produces: per-batch records, per-policy results and the whole report."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from evergreen.backtest.compare import PairedDifference


class BatchRecord(BaseModel):
    """One scored batch under one policy."""

    batch: int
    start: str
    end: str
    rows: int
    accuracy: float | None
    metric: float | None = Field(description="The spec's metric on this batch, scored by the champion.")
    champion: int = Field(description="The batch whose labels the champion last trained on.")
    retrain: bool
    reason: str
    detail: str = ""
    drift_score: float | None = None
    drifted: bool | None = None
    degraded: bool | None = None
    promoted: bool = False
    gate_passed: bool | None = None
    gate_ci_low: float | None = None
    train_seconds: float = 0.0
    mode: str | None = Field(default=None, description="A retrain's kind: full (fit) or update (warm start).")
    # the label-free estimate (policies with trigger.estimated; evergreen.backtest.estimates)
    estimate: float | None = None
    estimate_low: float | None = None
    estimate_high: float | None = None
    estimate_realised: float | None = None
    estimated_degraded: bool | None = None
    estimate_fired: bool = False
    estimate_early: bool = False


class PolicyResult(BaseModel):
    """One policy's replay: per-batch records and its totals."""

    name: str
    description: str = ""
    trigger: str
    window: str
    gated: bool
    config: dict[str, Any]
    metric: str
    batches: list[BatchRecord]
    mean_accuracy: float | None
    mean_metric: float | None
    retrains: int
    promotions: int
    train_seconds: float = Field(description="CPU seconds of the retrain fits (the warm-up fit excluded).")
    updates: int = Field(default=0, description="Retrains that were warm-start updates (training.update).")
    full_fits: int = Field(default=0, description="Retrains that were full fits.")
    baseline: bool = Field(default=False, description="A baseline the backtester adds to every run.")
    cpu_ratio: float | None = Field(
        default=None,
        description="train_seconds / the every-batch baseline's train_seconds (same run, same cache).",
    )
    vs_every_batch: PairedDifference | None = Field(
        default=None,
        description="Mean per-batch difference from the every-batch baseline in the rank score, with a "
        "95% interval (evergreen.backtest.compare).",
    )
    detection_delays: list[int | None] = Field(
        default_factory=list, description="Per marked drift: batches until the first retrain (None: none)."
    )
    mean_detection_delay: float | None = None
    rank: int | None = None
    pareto: bool = False
    seconds: float = Field(default=0.0, description="Wall seconds of this policy's replay.")
    estimate_metric: str | None = None
    estimate_mae: float | None = Field(
        default=None, description="Mean |CBPE estimate - realised metric| over the scored batches."
    )
    estimate_bias: float | None = None
    estimate_batches: int = 0
    estimate_fired: list[int] = Field(default_factory=list)
    estimate_early: list[int] = Field(
        default_factory=list, description="Fired on a real degradation whose labels were not in yet."
    )

    def per_batch(self, key: str) -> list[Any]:
        return [getattr(b, key) for b in self.batches]


def finite_or_none(x: float) -> float | None:
    """A plain float, or None for None, NaN and infinities (JSON has no NaN)."""
    return float(x) if x is not None and math.isfinite(x) else None


def mean_or_none(values: list[float | None]) -> float | None:
    """The mean of the values that are not None; None when there are none."""
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def detection_delays(records: Sequence[BatchRecord], marked: Sequence[int]) -> list[int | None]:
    """Per marked drift k: batches from k to the first retrain decided at or after k (before the next mark)."""
    out: list[int | None] = []
    retrains = [r.batch for r in records if r.retrain]
    for j, k in enumerate(marked):
        nxt = marked[j + 1] if j + 1 < len(marked) else math.inf
        hits = [b for b in retrains if k <= b < nxt]
        out.append(hits[0] - k if hits else None)
    return out


def stamp(ts: pd.Timestamp) -> str:
    """A timestamp as the reports write it (ISO 8601)."""
    return ts.isoformat()


class BacktestReport(BaseModel):
    """Every policy's replay over one history, ranked, with the Pareto front of metric vs retrains."""

    model: str
    metric: str
    rank_by: str
    batching: str
    warmup: int
    n_batches: int
    scored_batches: int
    start: str
    end: str
    rows: int
    marked_drifts: list[int] = Field(default_factory=list)
    policies: list[PolicyResult]
    best: str | None = None
    pareto_front: list[str] = Field(default_factory=list)
    seconds: float | None = None
    compute_seconds: dict[str, float] = Field(
        default_factory=dict, description="CPU seconds of actual computation by kind (cache misses only)."
    )
    compute_calls: dict[str, int] = Field(default_factory=dict)

    def policy(self, name: str) -> PolicyResult:
        return next(p for p in self.policies if p.name == name)
