"""How far a policy is from the every-batch baseline, paired batch by batch, with a confidence interval.

Mean accuracies of two policies differ by a few thousandths in most backtests; whether that is a real
difference depends on how much the per-batch differences scatter. Both policies score the same batches,
so the comparison is paired: d_i = policy_i - baseline_i. The interval is Student's t on the mean of d,
with the sample size shrunk for lag-1 autocorrelation (n_eff = n (1 - r1) / (1 + r1) for r1 > 0, the
AR(1) effective sample size): neighbouring weeks share a drift regime, and treating them as independent
would make the interval too narrow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field


class PairedDifference(BaseModel):
    """Mean per-batch difference (policy - baseline) of one score, with its interval."""

    score: str = Field(description="accuracy, or the spec's metric (the report's rank_by).")
    mean: float
    low: float | None = Field(description="Lower end of the interval (None with fewer than 3 batches).")
    high: float | None
    confidence: float
    batches: int
    effective_batches: float = Field(description="Batches after the lag-1 autocorrelation correction.")


def paired_difference(
    policy: Sequence[float | None],
    baseline: Sequence[float | None],
    *,
    score: str,
    confidence: float = 0.95,
) -> PairedDifference | None:
    """Difference of two per-batch score series over the batches both scored; None when none did."""
    from scipy import stats

    pairs = [(p, b) for p, b in zip(policy, baseline, strict=True) if p is not None and b is not None]
    d = np.array([p - b for p, b in pairs if math.isfinite(p) and math.isfinite(b)], dtype=float)
    if d.size == 0:
        return None
    mean = float(d.mean())
    n = int(d.size)
    if n < 3:
        return PairedDifference(
            score=score, mean=mean, low=None, high=None, confidence=confidence, batches=n, effective_batches=n
        )
    centred = d - mean
    denom = float(centred @ centred)
    r1 = float(centred[:-1] @ centred[1:]) / denom if denom > 0 else 0.0
    n_eff = n * (1 - r1) / (1 + r1) if r1 > 0 else float(n)
    n_eff = max(n_eff, 2.0)
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        return PairedDifference(
            score=score,
            mean=mean,
            low=mean,
            high=mean,
            confidence=confidence,
            batches=n,
            effective_batches=n_eff,
        )
    half = float(stats.t.ppf(0.5 + confidence / 2, df=n_eff - 1)) * sd / math.sqrt(n_eff)
    return PairedDifference(
        score=score,
        mean=mean,
        low=mean - half,
        high=mean + half,
        confidence=confidence,
        batches=n,
        effective_batches=round(n_eff, 2),
    )
