"""Label-free performance estimation (CBPE): the champion's calibrated scores estimate its metric.

Confidence-based performance estimation, the method NannyML popularised: if the model's scores are
calibrated, each row's calibrated probability is the chance that its label is positive, so the
expected confusion matrix (and every metric built on it) of an unlabelled batch follows from the
scores alone. It holds as long as P(y | x) does not change (covariate shift, not concept drift).

- `fit_calibrator`: sklearn `IsotonicRegression` of the hold-out labels on the model's scores (one
  vs rest per class for multiclass, normalised as sklearn's `CalibratedClassifierCV` does). Stored
  with the model version as JSON (the isotonic thresholds), so loading needs no pickle.
- `estimate`: the expected accuracy (binary and multiclass) or ROC AUC (binary) of a batch, with a
  (1 - 2 alpha) interval, i.e. a one-sided (1 - alpha) bound on each side:
  * accuracy: the realised accuracy is a mean of independent Bernoulli(q_i), q_i the calibrated
    chance that row i's prediction is right; the bound is normal with variance sum q_i (1 - q_i) / n^2;
  * ROC AUC: the expected ROC curve (TPR and FPR from expected positives and negatives at each
    threshold of the raw score, as NannyML does), computed by sklearn's `roc_auc_score` with each row
    counted as a positive of weight p_i and a negative of weight 1 - p_i; the bound is the percentile
    interval of the AUC over label sets drawn from the calibrated probabilities (parametric bootstrap).

The interval covers the batch's sampling noise given calibrated scores; it does not cover error in
the calibrator itself (a small hold-out calibrates coarsely).

Pure: arrays in, values out. The trigger rule is in evergreen.estimate_trigger.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from evergreen.metrics import metric_value

CALIBRATOR_ARTIFACT = "calibrator.json"
ESTIMABLE = {"binary": ("accuracy", "roc_auc"), "multiclass": ("accuracy",)}
DECISION_THRESHOLD = 0.5  # evergreen.metrics: a binary prediction is positive when the score >= 0.5


class Calibrator(BaseModel):
    """Isotonic maps from raw scores to calibrated probabilities, fitted on the champion's hold-out."""

    task: Literal["binary", "multiclass"]
    x: list[list[float]] = Field(description="Per class (binary: the positive one): isotonic x thresholds.")
    y: list[list[float]] = Field(description="Calibrated probabilities at the thresholds.")
    rows: int = Field(description="Hold-out rows the calibrator was fitted on.")
    reference: dict[str, float] = Field(
        default_factory=dict, description="The realised hold-out metrics of the scores it calibrated."
    )

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated P(positive) (n,) for binary scores, or class probabilities (n, K) for multiclass."""
        s = np.asarray(scores, dtype=float)
        if self.task == "binary":
            # np.interp clips at the ends: IsotonicRegression(out_of_bounds="clip").predict, without pickle
            return np.interp(s, self.x[0], self.y[0])
        cols = np.column_stack([np.interp(s[:, k], self.x[k], self.y[k]) for k in range(len(self.x))])
        total = cols.sum(axis=1, keepdims=True)
        # rows every class map calls impossible: uniform, as CalibratedClassifierCV does
        return np.divide(cols, total, out=np.full_like(cols, 1 / cols.shape[1]), where=total > 0)


class Estimate(BaseModel):
    """The estimated metric of one unlabelled batch, with a two-sided (1 - 2 alpha) interval."""

    metric: str
    n: int
    method: str = Field(description="'bernoulli-normal' (accuracy) or 'label-simulation' (roc_auc).")
    # the interval: two-sided (1 - 2 alpha), so each end is a one-sided (1 - alpha) bound
    value: float | None = Field(description="Expected metric (None where undefined, e.g. AUC of one class).")
    low: float | None
    high: float | None
    confidence: float


def _isotonic(y: np.ndarray, s: np.ndarray) -> tuple[list[float], list[float]]:
    from sklearn.isotonic import IsotonicRegression  # imported where used: flow modules import this one

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)
    return iso.X_thresholds_.tolist(), iso.y_thresholds_.tolist()


def fit_calibrator(task: str, y: np.ndarray, scores: np.ndarray) -> Calibrator:
    """Isotonic calibration of `scores` (evergreen.metrics forms) against hold-out labels `y`."""
    if task not in ESTIMABLE:
        raise ValueError(f"no label-free estimate for task {task!r} (binary and multiclass only)")
    y = np.asarray(y).astype(np.int64)
    s = np.asarray(scores, dtype=float)
    if len(y) == 0:
        raise ValueError("cannot calibrate on an empty hold-out")
    if task == "binary":
        maps = [_isotonic(y.astype(float), s)]
    else:
        maps = [_isotonic((y == k).astype(float), s[:, k]) for k in range(s.shape[1])]
    reference = {m: metric_value(m, y, s) for m in ESTIMABLE[task]}
    return Calibrator(
        task="binary" if task == "binary" else "multiclass",
        x=[m[0] for m in maps],
        y=[m[1] for m in maps],
        rows=int(len(y)),
        reference={k: float(v) for k, v in reference.items() if math.isfinite(v)},
    )


def correct_probability(cal: Calibrator, scores: np.ndarray) -> np.ndarray:
    """Per row, the calibrated chance that the model's own prediction (raw score, threshold 0.5) is right."""
    p = cal.probabilities(scores)
    if cal.task == "binary":
        predicted = np.asarray(scores, dtype=float) >= DECISION_THRESHOLD
        return np.where(predicted, p, 1 - p)
    pred = np.asarray(scores, dtype=float).argmax(axis=1)
    return p[np.arange(len(p)), pred]


def expected_roc_auc(scores: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC of the expected ROC curve: raw `scores` rank the rows, calibrated `p` are expected labels."""
    s = np.asarray(scores, dtype=float)
    if len(s) == 0 or p.sum() <= 0 or (1 - p).sum() <= 0:
        return float("nan")
    n = len(s)
    y = np.r_[np.ones(n), np.zeros(n)]
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, np.r_[s, s], sample_weight=np.r_[p, 1 - p]))


def simulated_auc(scores: np.ndarray, p: np.ndarray, n_sim: int, seed: int, chunk: int = 200) -> np.ndarray:
    """The realised AUC under `n_sim` label sets drawn from Bernoulli(p); NaN where a draw has one class."""
    from scipy.stats import rankdata

    ranks = rankdata(np.asarray(scores, dtype=float))  # average ranks: ties as roc_auc_score counts them
    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, n_sim, chunk):
        yb = rng.random((min(chunk, n_sim - start), len(p))) < p
        n_pos = yb.sum(axis=1)
        n_neg = yb.shape[1] - n_pos
        with np.errstate(invalid="ignore", divide="ignore"):
            auc = ((ranks * yb).sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
        out.append(np.where((n_pos > 0) & (n_neg > 0), auc, np.nan))
    return np.concatenate(out) if out else np.empty(0)


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def estimate(
    cal: Calibrator, scores: np.ndarray, metric: str, *, alpha: float = 0.05, n_sim: int = 1000, seed: int = 0
) -> Estimate:
    """The CBPE estimate of `metric` on a batch the model scored (`scores`: evergreen.metrics forms)."""
    if metric not in ESTIMABLE[cal.task]:
        raise ValueError(f"no label-free estimate of {metric!r} for a {cal.task} model")
    if not 0 < alpha < 0.5:
        raise ValueError("alpha must be in (0, 0.5)")
    s = np.asarray(scores, dtype=float)
    n = len(s)
    confidence = 1 - 2 * alpha
    if n == 0:
        return Estimate(
            metric=metric, value=None, low=None, high=None, confidence=confidence, method="none", n=0
        )
    if metric == "accuracy":
        q = correct_probability(cal, s)
        value = float(q.mean())
        from scipy.stats import norm

        half = float(norm.ppf(1 - alpha)) * math.sqrt(float((q * (1 - q)).sum())) / n
        lo, hi, method = max(0.0, value - half), min(1.0, value + half), "bernoulli-normal"
    else:
        p = cal.probabilities(s)
        value = expected_roc_auc(s, p)
        sims = simulated_auc(s, p, n_sim, seed)
        sims = sims[~np.isnan(sims)]
        lo, hi = np.quantile(sims, [alpha, 1 - alpha]).tolist() if sims.size else (math.nan, math.nan)
        method = "label-simulation"
    return Estimate(
        metric=metric,
        value=_finite(value),
        low=_finite(lo),
        high=_finite(hi),
        confidence=confidence,
        method=method,
        n=n,
    )


def calibration_artifacts(task: str, y: np.ndarray, scores: np.ndarray) -> dict[str, str]:
    """The calibrator a new version stores beside its reference profile ({} for regression)."""
    if task not in ESTIMABLE:
        return {}
    return {CALIBRATOR_ARTIFACT: fit_calibrator(task, y, scores).model_dump_json()}


def calibrator_tags(task: str) -> dict[str, str]:
    """The version tag naming the calibrator artifact (as `reference_profile` names the profile)."""
    return {"calibrator": CALIBRATOR_ARTIFACT} if task in ESTIMABLE else {}
