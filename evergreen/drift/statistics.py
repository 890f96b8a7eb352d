"""Drift statistics on binned counts: PSI, chi-square, Jensen-Shannon, KS and Wasserstein-1."""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2 as chi2_dist
from scipy.stats import kstwo, kstwobign

PSI_EPS = 1e-4
"""Proportions of zero are replaced by this in PSI (as Evidently does), so the log stays finite."""


def psi(ref_counts: np.ndarray, batch_counts: np.ndarray, eps: float = PSI_EPS) -> float:
    """Population stability index sum((b - r) * ln(b / r)) of proportions, zeros replaced by eps."""
    r = np.asarray(ref_counts, dtype=np.float64)
    b = np.asarray(batch_counts, dtype=np.float64)
    if r.sum() <= 0 or b.sum() <= 0:
        return float("nan")
    r = np.maximum(r / r.sum(), eps)
    b = np.maximum(b / b.sum(), eps)
    return float(np.sum((b - r) * np.log(b / r)))


def chi2_homogeneity(ref_counts: np.ndarray, batch_counts: np.ndarray) -> tuple[float, float]:
    """Pearson chi-square test that reference and batch counts share one distribution (2 x k table)."""
    r = np.asarray(ref_counts, dtype=np.float64)
    b = np.asarray(batch_counts, dtype=np.float64)
    keep = (r + b) > 0
    r, b = r[keep], b[keep]
    nr, nb = r.sum(), b.sum()
    if nr <= 0 or nb <= 0 or r.size < 2:
        return 0.0, 1.0
    col = r + b
    er = col * nr / (nr + nb)
    eb = col * nb / (nr + nb)
    stat = float(np.sum((r - er) ** 2 / er) + np.sum((b - eb) ** 2 / eb))
    return stat, float(chi2_dist.sf(stat, r.size - 1))


def js_distance(ref_counts: np.ndarray, batch_counts: np.ndarray) -> float:
    """Jensen-Shannon distance (natural log) of two count vectors' proportions."""
    r = np.asarray(ref_counts, dtype=np.float64)
    b = np.asarray(batch_counts, dtype=np.float64)
    if r.sum() <= 0 or b.sum() <= 0:
        return float("nan")
    return float(jensenshannon(r / r.sum(), b / b.sum()))


def ks_pvalue(d: float, n_ref: int, n_batch: int) -> float:
    """Two-sample KS p-value (the asymptotic form scipy uses: kstwo at the effective n)."""
    if n_ref <= 0 or n_batch <= 0 or not math.isfinite(d):
        return 1.0
    en = n_ref * n_batch / (n_ref + n_batch)
    if en <= 2000:
        return float(kstwo.sf(d, max(1, round(en))))
    return float(kstwobign.sf(d * math.sqrt(en)))  # kstwo is slow for large n; same limit


def _abs_linear_integral(d0: np.ndarray, d1: np.ndarray, width: np.ndarray) -> float:
    """Integral of |D| over segments where D goes linearly from d0 to d1."""
    a0, a1 = np.abs(d0), np.abs(d1)
    same = (d0 * d1) >= 0
    with np.errstate(invalid="ignore", divide="ignore"):
        cross = np.where(a0 + a1 > 0, (d0**2 + d1**2) / (2 * (a0 + a1)), 0.0)
    return float(np.sum(width * np.where(same, (a0 + a1) / 2, cross)))


def cdf_distances(positions: np.ndarray, ref_mass: np.ndarray, batch_mass: np.ndarray) -> tuple[float, float]:
    """KS and Wasserstein-1 of two binned distributions on shared segments [positions[i], positions[i+1]].

    CDFs are exact at the segment ends (KS is their largest gap); within a segment both masses are
    taken as uniform, so the CDF gap is linear there and |gap| integrates exactly.
    """
    r = np.asarray(ref_mass, dtype=np.float64)
    b = np.asarray(batch_mass, dtype=np.float64)
    if r.sum() <= 0 or b.sum() <= 0:
        return float("nan"), float("nan")
    d = np.concatenate(([0.0], np.cumsum(r) / r.sum() - np.cumsum(b) / b.sum()))
    d[-1] = 0.0
    ks = float(np.max(np.abs(d)))
    width = np.diff(np.asarray(positions, dtype=np.float64))
    return ks, _abs_linear_integral(d[:-1], d[1:], width)
