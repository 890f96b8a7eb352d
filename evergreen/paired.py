"""Paired comparison of two models on the same labelled rows, accumulated batch by batch.

Used by the shadow decision (evergreen/shadow.py) and the watch after a promotion (evergreen/watch.py).

Each row gives a loss per model (`row_losses`: log loss for roc_auc/logloss, 0/1 error for accuracy,
squared error for rmse/r2, absolute error for mae); the test is on the per-row differences
d = loss(candidate) - loss(reference), positive when the candidate is worse. A batch is stored as its
sufficient statistics (n, sum d, sum d^2, and both models' loss sums), so batches combine exactly and a
batch fits in one MLflow version tag: the state survives a killed process and needs no row storage.

The test is a paired z-test on the mean difference (CLT over at least `min_rows` rows; with 0/1 losses it
is the normal form of McNemar's test). It is one-sided in each direction: `p_worse` tests "the candidate
has the higher mean loss", `p_better` the lower.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy import stats

_EPS = 1e-15  # probability clipping, as sklearn's log_loss


def loss_name(metric: str) -> str:
    """The per-row loss the paired test uses for `metric` (documented in docs/release.md)."""
    return {
        "accuracy": "error",
        "rmse": "squared_error",
        "r2": "squared_error",
        "mae": "absolute_error",
    }.get(metric, "log_loss")


def row_losses(metric: str, y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """One loss per row (lower is better) for scores in evergreen.training.predict_scores's form."""
    y = np.asarray(y)
    s = np.asarray(scores, dtype=float)
    kind = loss_name(metric)
    if s.ndim == 2:  # multiclass probabilities, y = class index
        idx = np.clip(y.astype(np.int64), 0, s.shape[1] - 1)
        if kind == "error":
            return (np.argmax(s, axis=1) != y).astype(float)
        return -np.log(np.clip(s[np.arange(len(s)), idx], _EPS, 1.0))
    if kind == "error":
        return ((s >= 0.5).astype(int) != y.astype(int)).astype(float)
    if kind == "squared_error":
        return (s - y.astype(float)) ** 2
    if kind == "absolute_error":
        return np.abs(s - y.astype(float))
    p = np.clip(s, _EPS, 1 - _EPS)
    yy = y.astype(float)
    return -(yy * np.log(p) + (1 - yy) * np.log(1 - p))


class PairedBatch(BaseModel):
    """One batch of paired rows, as sufficient statistics (d = candidate loss - reference loss)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    key: str  # the batch's identity (data version + content hash): a batch counts once
    reference_version: str  # the model the candidate was paired against (the champion, or the previous one)
    n: int
    sum_d: float
    sum_d2: float
    reference_loss: float  # sums, so batches add up
    candidate_loss: float


def paired_batch(
    key: str, reference_version: str, reference: np.ndarray, candidate: np.ndarray
) -> PairedBatch:
    """A batch from both models' per-row losses on the same rows."""
    ref = np.asarray(reference, dtype=float)
    cand = np.asarray(candidate, dtype=float)
    if ref.shape != cand.shape:
        raise ValueError(f"paired losses differ in shape: {ref.shape} vs {cand.shape}")
    d = cand - ref
    return PairedBatch(
        key=key,
        reference_version=str(reference_version),
        n=int(d.size),
        sum_d=float(d.sum()),
        sum_d2=float((d * d).sum()),
        reference_loss=float(ref.sum()),
        candidate_loss=float(cand.sum()),
    )


class PairedTest(BaseModel):
    """The paired test over every batch so far."""

    model_config = ConfigDict(frozen=True)

    batches: int
    n: int
    reference_loss: float | None  # mean per row
    candidate_loss: float | None
    mean_diff: float | None  # candidate - reference; > 0: the candidate is worse
    std_err: float | None
    p_worse: float  # one-sided p-value of "the candidate's mean loss is higher"
    p_better: float  # ... "is lower"


def paired_test(batches: Iterable[PairedBatch]) -> PairedTest:
    """Combine batches and test the mean difference (p = 1 with no rows; equal models: 0.5 each side)."""
    bs = list(batches)
    n = sum(b.n for b in bs)
    if n == 0:
        return PairedTest(
            batches=len(bs), n=0, reference_loss=None, candidate_loss=None,
            mean_diff=None, std_err=None, p_worse=1.0, p_better=1.0,
        )  # fmt: skip
    sd, sd2 = sum(b.sum_d for b in bs), sum(b.sum_d2 for b in bs)
    mean = sd / n
    var = max(sd2 - n * mean * mean, 0.0) / (n - 1) if n > 1 else 0.0
    se = math.sqrt(var / n)
    if se > 0:
        z = mean / se
        p_worse, p_better = float(stats.norm.sf(z)), float(stats.norm.cdf(z))
    else:  # every row differs by the same amount: the sign alone decides
        p_worse = 0.0 if mean > 0 else (0.5 if mean == 0 else 1.0)
        p_better = 0.0 if mean < 0 else (0.5 if mean == 0 else 1.0)
    return PairedTest(
        batches=len(bs),
        n=n,
        reference_loss=sum(b.reference_loss for b in bs) / n,
        candidate_loss=sum(b.candidate_loss for b in bs) / n,
        mean_diff=mean,
        std_err=se,
        p_worse=p_worse,
        p_better=p_better,
    )


# --- batches <-> MLflow version tags (one JSON tag per batch, numbered from 1) ------------------------


def batch_tag(prefix: str, index: int, batch: PairedBatch) -> dict[str, str]:
    """The tag storing batch number `index` (1-based) under `prefix`, e.g. `shadow.batch.1`."""
    return {f"{prefix}.{index}": batch.model_dump_json()}


def batches_from_tags(prefix: str, tags: Mapping[str, str]) -> list[PairedBatch]:
    """The stored batches under `prefix`, in order (a tag that does not parse is skipped, not fatal)."""
    found: list[tuple[int, PairedBatch]] = []
    for key, value in tags.items():
        head, _, num = key.rpartition(".")
        if head != prefix or not num.isdigit():
            continue
        try:
            found.append((int(num), PairedBatch.model_validate(json.loads(value))))
        except (ValueError, TypeError):
            continue
    return [b for _, b in sorted(found, key=lambda t: t[0])]


def fmt_p(p: float) -> str:
    return f"{p:.3g}"
