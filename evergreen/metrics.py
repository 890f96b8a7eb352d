"""Metrics on scored labels, and a vectorised paired bootstrap over them.

Point estimates come from sklearn.metrics. The bootstrap evaluates B resamples at once with NumPy
(rank-based AUC via scipy.stats.rankdata along an axis), which is what keeps the gate cheap.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from evergreen.spec import HIGHER_IS_BETTER

_EPS = float(np.finfo(np.float64).eps)  # the clipping sklearn.metrics.log_loss applies


def metric_value(name: str, y: np.ndarray, scores: np.ndarray) -> float:
    """The metric of positive-class scores against 0/1 labels."""
    y = np.asarray(y)
    scores = np.asarray(scores, dtype=float)
    if name == "roc_auc":
        if len(np.unique(y)) < 2:
            return float("nan")
        return float(roc_auc_score(y, scores))
    if name == "accuracy":
        return float(accuracy_score(y, scores >= 0.5))
    if name == "logloss":
        return float(log_loss(y, scores, labels=[0, 1]))
    raise ValueError(f"unknown metric {name!r}")


def resampled_metric(name: str, y: np.ndarray, scores: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The metric on each row of `idx` (B x n resample indices) at once; NaN where undefined."""
    yb = np.asarray(y)[idx]
    sb = np.asarray(scores, dtype=float)[idx]
    if name == "accuracy":
        return ((sb >= 0.5) == yb).mean(axis=1)
    if name == "logloss":
        p = np.clip(sb, _EPS, 1 - _EPS)
        return -(yb * np.log(p) + (1 - yb) * np.log(1 - p)).mean(axis=1)
    if name == "roc_auc":
        ranks = rankdata(sb, axis=1)  # average ranks handle ties as roc_auc_score does
        n_pos = yb.sum(axis=1)
        n_neg = yb.shape[1] - n_pos
        with np.errstate(invalid="ignore", divide="ignore"):
            auc = ((ranks * yb).sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
        return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)
    raise ValueError(f"unknown metric {name!r}")


@dataclass(frozen=True)
class PairedDiff:
    """Challenger minus champion, oriented so that positive means the challenger is better."""

    mean: float
    low: float
    high: float
    n_resamples: int


def resample_chunks(n: int, n_resamples: int, seed: int, chunk: int = 250) -> Iterator[np.ndarray]:
    """Bootstrap index matrices (at most chunk x n each, bounding memory), deterministic by seed."""
    rng = np.random.default_rng(seed)
    for start in range(0, n_resamples, chunk):
        yield rng.integers(0, n, size=(min(chunk, n_resamples - start), n))


def percentile_ci(values: list[np.ndarray], confidence: float) -> tuple[float, float, float, int]:
    """(mean, low, high, count) of the finite bootstrap values; NaNs (undefined resamples) are dropped."""
    v = np.concatenate(values) if values else np.empty(0)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return float("nan"), float("nan"), float("nan"), 0
    tail = (1 - confidence) / 2
    lo, hi = np.quantile(v, [tail, 1 - tail])
    return float(v.mean()), float(lo), float(hi), int(v.size)


def paired_bootstrap(
    name: str,
    y: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    chunk: int = 250,
) -> PairedDiff:
    """Percentile CI of the metric difference over resamples shared by both models (deterministic by seed)."""
    sign = 1.0 if HIGHER_IS_BETTER[name] else -1.0
    diffs = [
        sign * (resampled_metric(name, y, challenger, idx) - resampled_metric(name, y, champion, idx))
        for idx in resample_chunks(len(y), n_resamples, seed, chunk)
    ]
    return PairedDiff(*percentile_ci(diffs, confidence))
