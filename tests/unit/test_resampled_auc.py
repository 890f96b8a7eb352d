"""evergreen.resampled_auc: the counting AUC equals the average-rank AUC bit for bit, and sklearn's."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from evergreen.metrics import resample_chunks, resampled_metric
from evergreen.resampled_auc import resampled_roc_auc


def _rank_auc(y: np.ndarray, s: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The average-rank formula the gate used before (one sort per resample)."""
    yb, sb = y[idx], s[idx]
    ranks = rankdata(sb, axis=1)
    n_pos = yb.sum(axis=1)
    n_neg = yb.shape[1] - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((ranks * yb).sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("n", [1, 2, 37, 2000])
def test_equal_to_average_ranks_bit_for_bit(n: int, ties: bool) -> None:
    rng = np.random.default_rng(n)
    y = (rng.random(n) < 0.4).astype(np.int8)
    s = rng.random(n)
    if ties:
        s = np.round(s * 7) / 7  # a handful of tied levels, as a shallow model's scores
    for idx in resample_chunks(n, 300, seed=3, chunk=128):
        np.testing.assert_array_equal(resampled_roc_auc(y, s, idx), _rank_auc(y, s, idx))


def test_equal_to_sklearn_on_each_resample() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.5).astype(np.int8)
    s = np.round(rng.random(500) + 0.3 * y, 2)
    idx = next(resample_chunks(500, 50, seed=1))
    want = [roc_auc_score(y[i], s[i]) for i in idx]
    np.testing.assert_allclose(resampled_roc_auc(y, s, idx), want, rtol=1e-12)


def test_single_class_resample_is_nan_and_shape_follows_idx() -> None:
    y = np.array([1, 0, 0, 0], dtype=np.int8)
    s = np.array([0.9, 0.1, 0.2, 0.3])
    idx = np.array([[1, 2, 3], [0, 1, 1]])
    out = resampled_roc_auc(y, s, idx)
    assert np.isnan(out[0]) and out[1] == 1.0


def test_resampled_metric_uses_it_and_keeps_nan_scores_nan() -> None:
    rng = np.random.default_rng(5)
    y = (rng.random(300) < 0.5).astype(np.int8)
    s = rng.random(300)
    idx = next(resample_chunks(300, 40, seed=2))
    np.testing.assert_array_equal(resampled_metric("roc_auc", y, s, idx), _rank_auc(y, s, idx))
    s[7] = np.nan
    assert np.isnan(resampled_metric("roc_auc", y, s, idx)[(idx == 7).any(axis=1)]).all()
