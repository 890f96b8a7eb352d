"""The reference profile: a training frame summarised once, at registration, for monitoring."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

SCORE_BINS = 20
"""Fixed bins of the prediction-score histogram on [0, 1]."""

ScoreKind = Literal["probability", "predicted_class", "prediction"]
"""What the score histogram counts, by task type (see score_points)."""


class NumericProfile(BaseModel):
    """Quantile bins of one numeric feature.

    `edges` = [min, cut_1, ..., cut_{k-1}, max]; bin i is (edges[i], edges[i+1]] and bin 0 also
    holds the minimum. Cuts are reference quantiles (actual data values), de-duplicated, so discrete
    data gets one bin per atom instead of empty bins. Every bin has a positive count.
    """

    count: int = Field(description="Non-null reference rows.")
    nulls: int = 0
    edges: list[float] = Field(default_factory=list)
    counts: list[int] = Field(default_factory=list)
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None


class CategoricalProfile(BaseModel):
    """Category counts of one categorical feature; keys are the values as strings."""

    count: int
    nulls: int = 0
    frequencies: dict[str, int] = Field(default_factory=dict)


class ReferenceProfile(BaseModel):
    """What monitoring needs from the training data, stored with the model version (JSON)."""

    version: int = 1
    n_rows: int
    bins: int
    numeric: dict[str, NumericProfile] = Field(default_factory=dict)
    categorical: dict[str, CategoricalProfile] = Field(default_factory=dict)
    label_balance: float | None = Field(default=None, description="Share of positive labels.")
    score_histogram: list[int] | None = Field(
        default=None, description=f"Counts of model scores in {SCORE_BINS} equal bins on [0, 1]."
    )
    score_mean: float | None = None
    score_kind: ScoreKind = Field(
        default="probability",
        description="binary: positive-class probability; multiclass: predicted class; "
        "regression: prediction scaled to the reference predictions' [min, max].",
    )
    score_range: list[float] | None = Field(
        default=None, description="regression: [min, max] of the reference predictions."
    )
    n_classes: int | None = Field(default=None, description="multiclass: the number of classes.")
    metrics: dict[str, float] = Field(default_factory=dict, description="Hold-out metrics of the model.")
    importance: dict[str, float] = Field(
        default_factory=dict,
        description="The model's normalised feature importance (evergreen.drift.impact); {}: unknown.",
    )

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def score_points(self, scores: np.ndarray) -> np.ndarray:
        """Model scores as the 1-D points on [0, 1] the score histogram counts (see score_points)."""
        return score_points(scores, self.score_kind, self.score_range, self.n_classes)


def score_points(
    scores: np.ndarray, kind: str, score_range: list[float] | None = None, n_classes: int | None = None
) -> np.ndarray:
    """The prediction, as points on [0, 1] for the fixed-bin score histogram.

    - probability (binary): the positive-class probability itself;
    - predicted_class (multiclass, scores n x K): class k at (k + 0.5) / K, so the histogram is the
      predicted-class distribution (one bin per class up to SCORE_BINS classes);
    - prediction (regression): (value - min) / (max - min) over the reference predictions; values
      outside the reference range land outside [0, 1] and are counted as `out_of_range`.
    """
    s = np.asarray(scores, dtype=float)
    if kind == "predicted_class":
        k = n_classes or s.shape[1]
        return (s.argmax(axis=1) + 0.5) / k
    if kind == "prediction":
        lo, hi = score_range or [0.0, 1.0]
        return (s - lo) / (hi - lo) if hi > lo else s - lo + 0.5
    return s


def as_float(values: Any) -> np.ndarray:
    """A float64 array with NaN for missing or non-numeric values (never raises on bad cells)."""
    if isinstance(values, pd.Series):
        try:
            return values.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def finite(x: float | np.floating | None) -> float | None:
    """A plain float, or None for None, NaN and infinities."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def sorted_quantiles(ordered: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """np.quantile(ordered, probs, method="inverted_cdf") for an already sorted, NaN-free array.

    The same index arithmetic as numpy's inverted_cdf (so the same values, bit for bit), without the
    sort and partition np.quantile does again on each 1M-row column (half of a profile's cost)."""
    index = len(ordered) * np.asarray(probs, dtype=float) - 1
    below = np.floor(index)
    at = np.where(index - below == 0, below, below + 1).astype(np.intp)
    return ordered[np.clip(at, 0, len(ordered) - 1)]


def _numeric_profile(values: np.ndarray, bins: int) -> NumericProfile:
    valid = values[~np.isnan(values)]
    nulls = int(values.size - valid.size)
    if valid.size == 0:
        return NumericProfile(count=0, nulls=nulls)
    valid = np.sort(valid)
    lo, hi = float(valid[0]), float(valid[-1])
    probs = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    cuts = np.unique(sorted_quantiles(valid, probs))
    cuts = cuts[cuts < hi]
    counts = np.diff(np.searchsorted(valid, cuts, side="right"), prepend=0, append=valid.size)
    return NumericProfile(
        count=int(valid.size),
        nulls=nulls,
        edges=[lo, *cuts.tolist(), hi],
        counts=counts.astype(int).tolist(),
        mean=float(valid.mean()),
        std=float(valid.std(ddof=1)) if valid.size > 1 else 0.0,
        min=lo,
        max=hi,
    )


def _key(value: Any) -> str:
    """A category's key: str(value), with integral floats written as ints (1.0 -> "1").

    An integer column with nulls arrives as float64, so this keeps its batches matching the profile.
    """
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def category_counts(series: pd.Series) -> tuple[dict[str, int], int]:
    """Counts keyed by _key(value), and the null count (one hash pass over the column)."""
    nulls = int(series.isna().sum())
    vc = series.value_counts(dropna=True)
    out: dict[str, int] = {}
    for key, n in zip(vc.index, vc.to_numpy(), strict=True):
        k = _key(key)
        out[k] = out.get(k, 0) + int(n)
    return out, nulls


def score_histogram(scores: np.ndarray) -> np.ndarray:
    """Counts of scores in SCORE_BINS equal bins on [0, 1] (values outside are clipped in)."""
    s = as_float(scores)
    s = s[~np.isnan(s)]
    idx = np.clip((s * SCORE_BINS).astype(np.int64, copy=False), 0, SCORE_BINS - 1)
    return np.bincount(idx, minlength=SCORE_BINS)


def build_profile(
    frame: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    *,
    bins: int = 100,
    labels: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    metrics: dict[str, float] | None = None,
    task: str = "binary",
    importance: dict[str, float] | None = None,
) -> ReferenceProfile:
    """Summarise a training frame (and the model's scores on it) into a reference profile.

    `task` says what `labels` and `scores` are (evergreen.training.labels / predict_scores forms).
    `importance`: the model's feature importance (evergreen.drift.impact.feature_importance).
    """
    if bins < 2:
        raise ValueError("bins must be at least 2")
    missing = [c for c in [*numeric, *categorical] if c not in frame.columns]
    if missing:
        raise ValueError(f"columns not in the frame: {missing}")
    num = {c: _numeric_profile(as_float(frame[c]), bins) for c in numeric}
    cat: dict[str, CategoricalProfile] = {}
    for c in categorical:
        freq, nulls = category_counts(frame[c])
        cat[c] = CategoricalProfile(count=int(len(frame) - nulls), nulls=nulls, frequencies=freq)
    balance = None
    if labels is not None and task == "binary":
        y = as_float(labels)
        y = y[~np.isnan(y)]
        balance = float((y > 0).mean()) if y.size else None
    kind: ScoreKind = {"multiclass": "predicted_class", "regression": "prediction"}.get(task, "probability")  # type: ignore[assignment]
    hist = None
    score_mean = None
    score_range = None
    n_classes = None
    if scores is not None:
        raw = np.asarray(scores, dtype=float)
        if kind == "predicted_class":
            n_classes = int(raw.shape[1])
        if kind == "prediction":
            valid = raw[np.isfinite(raw)]
            score_range = [float(valid.min()), float(valid.max())] if valid.size else [0.0, 1.0]
        s = score_points(raw, kind, score_range, n_classes)
        hist = score_histogram(s).astype(int).tolist()
        score_mean = finite(np.nanmean(s)) if np.any(~np.isnan(s)) else None
    return ReferenceProfile(
        n_rows=len(frame),
        bins=bins,
        numeric=num,
        categorical=cat,
        label_balance=balance,
        score_histogram=hist,
        score_mean=score_mean,
        score_kind=kind,
        score_range=score_range,
        n_classes=n_classes,
        metrics={k: float(v) for k, v in (metrics or {}).items()},
        importance=dict(importance or {}),
    )
