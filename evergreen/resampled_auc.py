"""ROC AUC on many bootstrap resamples at once, in O(resamples x rows), without sorting any resample.

A resample only repeats rows of the original hold-out, so its ranks follow from the original order:
sort the scores once, group tied scores into levels, count how often each resample draws a positive
and a negative at each level, and the Mann-Whitney U is the sum over levels of
positives x (negatives below + half the negatives tied). U is an exact integer (kept as 2U), so the
AUC, 2U / (2 n_pos n_neg), is the very float the average-rank formula gives (rank sums of
half-integers are exact in float64): the gate's numbers do not change, only its cost (the rank-based
version sorted every resample, 29 s of a 1M-row retrain on this machine; benchmarks/retrain.py).
"""

from __future__ import annotations

import numpy as np


def resampled_roc_auc(y: np.ndarray, scores: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """ROC AUC of `scores` against 0/1 labels `y` on each row of `idx` (B x m row indices); NaN where
    a resample holds a single class. Scores must be finite (the caller falls back to ranks otherwise)."""
    s = np.asarray(scores, dtype=float)
    pos = np.asarray(y) == 1
    order = np.argsort(s, kind="stable")
    ss = s[order]
    new_level = np.empty(len(ss), dtype=bool)
    new_level[:1] = True
    np.not_equal(ss[1:], ss[:-1], out=new_level[1:])
    level = np.empty(len(s), dtype=np.int64)
    level[order] = np.cumsum(new_level) - 1  # tie level of each original row, in score order
    k = int(level.max()) + 1 if len(level) else 0
    b = idx.shape[0]
    cell = level[idx] + (np.arange(b, dtype=np.int64) * k)[:, None]  # (resample, level) of each draw
    drawn_pos = pos[idx]
    p = np.bincount(cell[drawn_pos], minlength=b * k).reshape(b, k)
    n = np.bincount(cell[~drawn_pos], minlength=b * k).reshape(b, k)
    below = np.cumsum(n, axis=1) - n
    twice_u = (p * (2 * below + n)).sum(axis=1)
    n_pos, n_neg = p.sum(axis=1), n.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = twice_u / (2.0 * n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)
