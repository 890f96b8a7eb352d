"""Metrics on scored labels, and a vectorised paired bootstrap over them.

Scores take one form per task type (evergreen.training.predict_scores):
- binary: positive-class probabilities (n,), labels 0/1;
- multiclass: class probabilities (n, K), labels the class index 0..K-1;
- regression: predicted values (n,), numeric targets.

Point estimates come from sklearn.metrics. The bootstrap evaluates B resamples at once with NumPy
(rank-based AUC via scipy.stats.rankdata along an axis), which is what keeps the gate cheap.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from evergreen.resampled_auc import resampled_roc_auc
from evergreen.spec import HIGHER_IS_BETTER

_EPS = float(np.finfo(np.float64).eps)  # the clipping sklearn.metrics.log_loss applies


def metric_value(name: str, y: np.ndarray, scores: np.ndarray) -> float:
    """The metric of scores against labels (the forms above); NaN where undefined (e.g. AUC of one class)."""
    y = np.asarray(y)
    scores = np.asarray(scores, dtype=float)
    if y.size == 0:
        return float("nan")
    if scores.ndim == 2:
        return _multiclass_value(name, y, scores)
    # sklearn (and scipy below) are imported where used: they cost seconds of every flow-run start
    from sklearn.metrics import (
        accuracy_score,
        log_loss,
        mean_absolute_error,
        r2_score,
        roc_auc_score,
        root_mean_squared_error,
    )

    if name == "roc_auc":
        if len(np.unique(y)) < 2:
            return float("nan")
        return float(roc_auc_score(y, scores))
    if name == "accuracy":
        return float(accuracy_score(y, scores >= 0.5))
    if name == "logloss":
        return float(log_loss(y, scores, labels=[0, 1]))
    if name == "rmse":
        return float(root_mean_squared_error(y, scores))
    if name == "mae":
        return float(mean_absolute_error(y, scores))
    if name == "r2":
        # Undefined on a constant target (sklearn would report 0 or 1 by convention).
        return float("nan") if np.ptp(y) == 0 else float(r2_score(y, scores))
    raise ValueError(f"unknown metric {name!r}")


def _multiclass_value(name: str, y: np.ndarray, proba: np.ndarray) -> float:
    from sklearn.metrics import accuracy_score, f1_score, log_loss

    y = y.astype(np.int64)
    if name == "accuracy":
        return float(accuracy_score(y, proba.argmax(axis=1)))
    if name == "macro_f1":
        # Macro over the classes present in labels or predictions, as f1_score's default labels.
        return float(f1_score(y, proba.argmax(axis=1), average="macro"))
    if name == "logloss":
        return float(log_loss(y, proba, labels=list(range(proba.shape[1]))))
    raise ValueError(f"metric {name!r} is not defined for class probabilities")


def resampled_metric(name: str, y: np.ndarray, scores: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The metric on each row of `idx` (B x n resample indices) at once; NaN where undefined."""
    if name == "roc_auc" and np.ndim(scores) == 1 and np.isfinite(np.asarray(scores, dtype=float)).all():
        return resampled_roc_auc(y, scores, idx)  # the same values as the ranks below, without a sort each
    yb = np.asarray(y)[idx]
    sb = np.asarray(scores, dtype=float)[idx]
    if sb.ndim == 3:
        return _resampled_multiclass(name, yb.astype(np.int64), sb)
    if name in ("rmse", "mae", "r2"):
        return _resampled_regression(name, yb.astype(float), sb)
    if name == "accuracy":
        return ((sb >= 0.5) == yb).mean(axis=1)
    if name == "logloss":
        p = np.clip(sb, _EPS, 1 - _EPS)
        return -(yb * np.log(p) + (1 - yb) * np.log(1 - p)).mean(axis=1)
    if name == "roc_auc":
        from scipy.stats import rankdata

        ranks = rankdata(sb, axis=1)  # average ranks handle ties as roc_auc_score does
        n_pos = yb.sum(axis=1)
        n_neg = yb.shape[1] - n_pos
        with np.errstate(invalid="ignore", divide="ignore"):
            auc = ((ranks * yb).sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
        return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)
    raise ValueError(f"unknown metric {name!r}")


def _resampled_regression(name: str, yb: np.ndarray, pb: np.ndarray) -> np.ndarray:
    err = pb - yb
    if name == "rmse":
        return np.sqrt((err**2).mean(axis=1))
    if name == "mae":
        return np.abs(err).mean(axis=1)
    ss_res = (err**2).sum(axis=1)
    ss_tot = ((yb - yb.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ss_tot > 0, 1 - ss_res / ss_tot, np.nan)


def _resampled_multiclass(name: str, yb: np.ndarray, pb: np.ndarray) -> np.ndarray:
    """B x n labels and B x n x K probabilities -> B metric values."""
    if name == "logloss":
        p = np.take_along_axis(pb, yb[..., None], axis=2)[..., 0]
        return -np.log(np.clip(p, _EPS, 1.0)).mean(axis=1)
    pred = pb.argmax(axis=2)
    if name == "accuracy":
        return (pred == yb).mean(axis=1)
    if name == "macro_f1":
        f1 = np.full((yb.shape[0], pb.shape[2]), np.nan)
        for k in range(pb.shape[2]):
            tp = ((pred == k) & (yb == k)).sum(axis=1)
            denom = 2 * tp + ((pred == k) & (yb != k)).sum(axis=1) + ((pred != k) & (yb == k)).sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                f1[:, k] = np.where(denom > 0, 2 * tp / denom, np.nan)  # absent class: left out of the mean
        return np.nanmean(f1, axis=1)
    raise ValueError(f"metric {name!r} is not defined for class probabilities")


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
