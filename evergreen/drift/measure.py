"""Reference profiles and drift statistics against them.

At registration the champion's training frame is summarised into a :class:`ReferenceProfile`
(quantile bins and counts per numeric feature, category frequencies, a score histogram, label
balance and hold-out metrics). Monitoring bins only the new batch against that profile, so the cost
is O(batch rows) and memory O(features x bins); the reference data is never reloaded.

Statistics per feature (see docs/drift.md):

* PSI, Jensen-Shannon distance and chi-square on *deciles* of the reference (the fine bins merged
  so each group holds about 10% of the reference mass) or on categories. PSI on 100 fine bins has a
  no-drift noise floor of about (bins - 1) / rows, which would flag every small batch.
* KS and a std-normalised Wasserstein-1 distance from the fine-binned CDFs (KS is exact at the bin
  edges, hence within one reference bin mass, about 1/bins, of the raw-data KS).

Verdicts are batch-size aware: a feature drifts only when its statistic exceeds its threshold
(an effect size) AND a test for "same distribution" rejects at `alpha` for this batch size (the
chi-square homogeneity test on the same decile or category counts for PSI/JS, the two-sample KS
test for KS/Wasserstein).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2 as chi2_dist
from scipy.stats import kstwo, kstwobign

from evergreen.spec import DriftTrigger, Feature

log = logging.getLogger(__name__)

SCORE_BINS = 20
"""Fixed bins of the prediction-score histogram on [0, 1]."""
PSI_GROUPS = 10
"""PSI, JS and chi-square use the fine bins merged into this many reference-mass groups (deciles)."""
MAX_CATEGORIES = 20
"""Categorical statistics keep the most frequent reference categories; the rest pool into OTHER."""
PSI_EPS = 1e-4
"""Proportions of zero are replaced by this in PSI (as Evidently does), so the log stays finite."""
DEFAULT_ALPHA = 0.01
"""Significance of the batch-size gate: a feature drifts only when p < alpha as well."""
DEFAULT_PSI_THRESHOLD = 0.2
"""PSI threshold used where a statistic does not apply to a feature (categorical under KS/Wasserstein)."""
OTHER = "__other__"
UNSEEN = "__unseen__"
_MAX_LISTED_UNSEEN = 20
_GRID_CELLS = 1 << 16  # lookup-table cells of the fast binning path
_FAST_MIN_ROWS = 50_000

Statistic = Literal["psi", "ks", "js", "chi2", "wasserstein"]
_NUMERIC_ONLY = {"ks", "wasserstein"}


# --------------------------------------------------------------------------------------------------
# Profile
# --------------------------------------------------------------------------------------------------


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
    metrics: dict[str, float] = Field(default_factory=dict, description="Hold-out metrics of the model.")

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]


def _as_float(values: Any) -> np.ndarray:
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


def _finite(x: float | np.floating | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _numeric_profile(values: np.ndarray, bins: int) -> NumericProfile:
    valid = values[~np.isnan(values)]
    nulls = int(values.size - valid.size)
    if valid.size == 0:
        return NumericProfile(count=0, nulls=nulls)
    valid = np.sort(valid)
    lo, hi = float(valid[0]), float(valid[-1])
    probs = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    cuts = np.unique(np.quantile(valid, probs, method="inverted_cdf"))
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


def _category_counts(series: pd.Series) -> tuple[dict[str, int], int]:
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
    s = _as_float(scores)
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
) -> ReferenceProfile:
    """Summarise a training frame (and the model's scores on it) into a reference profile."""
    if bins < 2:
        raise ValueError("bins must be at least 2")
    missing = [c for c in [*numeric, *categorical] if c not in frame.columns]
    if missing:
        raise ValueError(f"columns not in the frame: {missing}")
    num = {c: _numeric_profile(_as_float(frame[c]), bins) for c in numeric}
    cat: dict[str, CategoricalProfile] = {}
    for c in categorical:
        freq, nulls = _category_counts(frame[c])
        cat[c] = CategoricalProfile(count=int(len(frame) - nulls), nulls=nulls, frequencies=freq)
    balance = None
    if labels is not None:
        y = _as_float(labels)
        y = y[~np.isnan(y)]
        balance = float((y > 0).mean()) if y.size else None
    hist = None
    score_mean = None
    if scores is not None:
        hist = score_histogram(scores).astype(int).tolist()
        s = _as_float(scores)
        score_mean = _finite(np.nanmean(s)) if np.any(~np.isnan(s)) else None
    return ReferenceProfile(
        n_rows=len(frame),
        bins=bins,
        numeric=num,
        categorical=cat,
        label_balance=balance,
        score_histogram=hist,
        score_mean=score_mean,
        metrics={k: float(v) for k, v in (metrics or {}).items()},
    )


# --------------------------------------------------------------------------------------------------
# Binning the batch
# --------------------------------------------------------------------------------------------------


class _Binned(NamedTuple):
    counts: np.ndarray  # per fine bin, out-of-range values in the outer bins
    below: int  # values < edges[0]
    above: int  # values > edges[-1]
    low: float  # batch minimum (meaningful when below > 0)
    high: float  # batch maximum (meaningful when above > 0)


def _bin_plain(edges: np.ndarray, x: np.ndarray) -> _Binned:
    cuts = edges[1:-1]
    counts = np.bincount(np.searchsorted(cuts, x, side="left"), minlength=cuts.size + 1)
    low, high = float(x.min()), float(x.max())
    below = int(np.count_nonzero(x < edges[0])) if low < edges[0] else 0
    above = int(np.count_nonzero(x > edges[-1])) if high > edges[-1] else 0
    return _Binned(counts, below, above, low, high)


def _bin(edges: np.ndarray, x: np.ndarray) -> _Binned:
    """Bin non-NaN `x` once against the profile edges, and count the values outside [min, max].

    Large batches take a lookup-table path. One multiply-add maps each value to a uniform grid cell
    spanning the first to the last cut (cell 0 below it, cell g + 1 above it). Floating-point
    multiply and add are monotone, so a cell that no cut maps to lies wholly inside one bin; only
    values in cells a cut maps to (and their neighbours), or outside the grid, are extracted and go
    through np.searchsorted. The counts are identical to np.searchsorted on every value, and the
    out-of-range tallies come from the small extracted subset instead of extra passes over x.
    """
    edges = np.asarray(edges, dtype=np.float64)
    cuts = edges[1:-1]
    k = cuts.size + 1
    if x.size < _FAST_MIN_ROWS or cuts.size < 2 or not cuts[-1] > cuts[0]:
        return _bin_plain(edges, x)
    g = _GRID_CELLS
    pad = (cuts[-1] - cuts[0]) * 1e-6
    a = g / ((cuts[-1] - cuts[0]) + 2 * pad)
    b = 1.0 - (cuts[0] - pad) * a
    if not (math.isfinite(a) and math.isfinite(b) and a > 0):
        return _bin_plain(edges, x)
    t = np.multiply(x, a)
    t += b
    np.clip(t, 0.0, g + 1.0, out=t)
    cell = t.astype(np.intp)
    del t
    cut_cells = np.clip(cuts * a + b, 0.0, g + 1.0).astype(np.intp)  # the same operations as for x
    if cut_cells[0] != 1 or cut_cells[-1] != g:  # the first and last cut sit in the end cells, by the pad
        return _bin_plain(edges, x)
    extract = np.zeros(g + 2, dtype=bool)
    for off in (-1, 0, 1):
        extract[np.clip(cut_cells + off, 1, g)] = True
    extract[0] = extract[g + 1] = True
    per_cell = np.bincount(cell, minlength=g + 2)
    if int(per_cell[extract].sum()) > x.size // 3:  # e.g. discrete data sitting on the cuts
        return _bin_plain(edges, x)
    mids = (np.arange(g + 2, dtype=np.float64) + 0.5 - b) / a  # each pure cell's bin, read at its middle
    lut = np.searchsorted(cuts, mids, side="left")
    keep = ~extract
    counts = np.bincount(lut[keep], weights=per_cell[keep], minlength=k).astype(np.int64)
    near = x[extract[cell]]  # every value below c_0 or above c_last is in here
    counts += np.bincount(np.searchsorted(cuts, near, side="left"), minlength=k)
    lo_mask, hi_mask = near < edges[0], near > edges[-1]
    below, above = int(np.count_nonzero(lo_mask)), int(np.count_nonzero(hi_mask))
    low = float(near[lo_mask].min()) if below else float(edges[0])
    high = float(near[hi_mask].max()) if above else float(edges[-1])
    return _Binned(counts, below, above, low, high)


def bin_counts(edges: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Counts of non-NaN `x` in the profile's bins: bin i is (edges[i], edges[i+1]], with bin 0
    open below and the last bin open above (so out-of-range values land in the outer bins)."""
    return _bin(np.asarray(edges, dtype=np.float64), x).counts


def merge_groups(ref_counts: np.ndarray, groups: int = PSI_GROUPS) -> np.ndarray:
    """Group id per fine bin, merging consecutive bins into about `groups` equal reference-mass groups."""
    ref_counts = np.asarray(ref_counts, dtype=np.float64)
    total = ref_counts.sum()
    if total <= 0 or ref_counts.size == 0:
        return np.zeros(ref_counts.size, dtype=np.int64)
    cum_end = np.cumsum(ref_counts) / total
    g = np.clip(np.ceil(cum_end * groups - 1e-9).astype(np.int64) - 1, 0, groups - 1)
    nz = np.flatnonzero(ref_counts > 0)
    g[: nz[0]] = g[nz[0]]  # leading empty bins join the first non-empty one
    _, ids = np.unique(g, return_inverse=True)
    return ids.reshape(-1)


# --------------------------------------------------------------------------------------------------
# Statistics on counts
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


class FeatureDrift(BaseModel):
    """Drift of one feature (or of the prediction score) in one batch."""

    name: str
    kind: Literal["numeric", "categorical", "score"]
    n: int = Field(description="Non-null batch values measured.")
    nulls: int = 0
    null_share: float = 0.0
    reference_null_share: float = 0.0
    missing: bool = Field(default=False, description="The column is absent from the batch.")
    psi: float | None = Field(default=None, description="PSI on reference deciles (or categories).")
    ks: float | None = None
    ks_pvalue: float | None = None
    js: float | None = Field(default=None, description="Jensen-Shannon distance (natural log).")
    chi2: float | None = None
    chi2_pvalue: float | None = None
    wasserstein: float | None = Field(default=None, description="Wasserstein-1 / reference std.")
    out_of_range: int = Field(default=0, description="Values outside the reference [min, max].")
    unseen: int = Field(default=0, description="Values of categories absent from the reference.")
    unseen_categories: list[str] = Field(default_factory=list)
    batch_mean: float | None = None
    reference_mean: float | None = None
    statistic: Statistic
    value: float | None = Field(description="The verdict statistic (for chi2: its p-value).")
    threshold: float
    p_value: float | None = Field(description="Batch-size gate: p of a same-distribution test.")
    exceeds_threshold: bool
    significant: bool
    critical: bool = False
    drifted: bool


class DriftReport(BaseModel):
    """Drift of one batch against a reference profile; the payload of evergreen.drift.* events."""

    dataset_drift: bool
    drift_share: float = Field(description="Drifted features / measured features.")
    drift_score: float | None = Field(description="Largest decile PSI across the measured features.")
    drifted_features: list[str]
    critical_drifted: list[str] = Field(default_factory=list)
    features: dict[str, FeatureDrift]
    score: FeatureDrift | None = None
    n_rows: int
    below_min_rows: bool
    statistic: Statistic
    threshold: float
    share: float
    min_rows: int
    alpha: float
    reasons: list[str] = Field(default_factory=list)

    def to_rows(self) -> list[dict[str, Any]]:
        """One flat dict per feature (and the score, if measured): a table artifact."""
        cols = [
            "name",
            "kind",
            "statistic",
            "value",
            "threshold",
            "p_value",
            "drifted",
            "critical",
            "psi",
            "ks",
            "js",
            "chi2_pvalue",
            "wasserstein",
            "n",
            "nulls",
            "out_of_range",
            "unseen",
        ]
        items = [*self.features.values(), *([self.score] if self.score is not None else [])]
        return [{c: getattr(f, c) for c in cols} for f in items]

    @property
    def summary(self) -> str:
        return "; ".join(self.reasons)


def _resolve(kind: str, cfg: DriftTrigger, feature: Feature | None) -> tuple[Statistic, float]:
    """The statistic and threshold for one feature; categorical features cannot use KS/Wasserstein."""
    stat: Statistic = cfg.statistic
    override = feature.drift_threshold if feature is not None else None
    if kind == "categorical" and stat in _NUMERIC_ONLY:
        return "psi", override if override is not None else DEFAULT_PSI_THRESHOLD
    return stat, override if override is not None else cfg.threshold


def _verdict(
    stats: dict[str, Any],
    stat: Statistic,
    threshold: float,
    alpha: float,
    flaggable: bool,
) -> dict[str, Any]:
    if stat == "chi2":
        value = stats.get("chi2_pvalue")
        p = value
        exceeds = value is not None and value < threshold
        significant = exceeds
    else:
        value = stats.get(stat)
        p = stats.get("ks_pvalue") if stat in _NUMERIC_ONLY else stats.get("chi2_pvalue")
        exceeds = value is not None and value > threshold
        significant = p is not None and p < alpha
    return {
        "statistic": stat,
        "value": value,
        "threshold": threshold,
        "p_value": p,
        "exceeds_threshold": bool(exceeds),
        "significant": bool(significant),
        "drifted": bool(exceeds and significant and flaggable),
    }


def _grouped_stats(ref: np.ndarray, batch: np.ndarray, groups: np.ndarray | None) -> dict[str, Any]:
    if groups is not None:
        ng = int(groups.max()) + 1 if groups.size else 0
        ref = np.bincount(groups, weights=ref, minlength=ng)
        batch = np.bincount(groups, weights=batch, minlength=ng)
    c2, p = chi2_homogeneity(ref, batch)
    return {
        "psi": _finite(psi(ref, batch)),
        "js": _finite(js_distance(ref, batch)),
        "chi2": _finite(c2),
        "chi2_pvalue": _finite(p),
    }


def _numeric_drift(prof: NumericProfile, values: np.ndarray) -> dict[str, Any]:
    total = float(values.sum())  # one pass: the mean, and NaN/inf detection
    if math.isfinite(total):
        nulls, x = 0, values
    else:
        nan = np.isnan(values)
        nulls = int(np.count_nonzero(nan))
        x = values[~nan] if nulls else values
        total = float(x.sum())
    out: dict[str, Any] = {"n": int(x.size), "nulls": nulls}
    if x.size == 0 or prof.count == 0:
        return out
    out["batch_mean"] = _finite(total / x.size)
    edges = np.asarray(prof.edges, dtype=np.float64)
    ref = np.asarray(prof.counts, dtype=np.float64)
    binned = _bin(edges, x)
    batch = binned.counts.astype(np.float64)
    below, above, bmin, bmax = binned.below, binned.above, binned.low, binned.high
    out["out_of_range"] = below + above
    out.update(_grouped_stats(ref, batch, merge_groups(ref)))
    # KS / Wasserstein on the fine bins, with out-of-range batch mass on its own segments.
    positions, rm, bm = edges, ref, batch.copy()
    bm[0] -= below
    bm[-1] -= above
    if below:
        positions = np.concatenate(([bmin], positions))
        rm, bm = np.concatenate(([0.0], rm)), np.concatenate(([below], bm))
    if above:
        positions = np.concatenate((positions, [bmax]))
        rm, bm = np.concatenate((rm, [0.0])), np.concatenate((bm, [above]))
    ks, w1 = cdf_distances(positions, rm, bm)
    scale = prof.std if prof.std else 1.0
    out["ks"] = _finite(ks)
    out["ks_pvalue"] = _finite(ks_pvalue(ks, prof.count, int(x.size)))
    out["wasserstein"] = _finite(w1 / scale)
    return out


def _categorical_drift(prof: CategoricalProfile, series: pd.Series) -> dict[str, Any]:
    counts, nulls = _category_counts(series)
    n = sum(counts.values())
    out: dict[str, Any] = {"n": n, "nulls": nulls}
    if n == 0 or prof.count == 0:
        return out
    ranked = sorted(prof.frequencies.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = ranked[: MAX_CATEGORIES - 1] if len(ranked) > MAX_CATEGORIES else ranked
    kept_keys = [k for k, _ in kept]
    index = {k: i for i, k in enumerate(kept_keys)}
    ref = np.zeros(len(kept_keys) + 2)  # kept..., OTHER, UNSEEN
    ref[: len(kept_keys)] = [v for _, v in kept]
    ref[-2] = prof.count - ref[:-2].sum()
    batch = np.zeros_like(ref)
    unseen = {k: v for k, v in counts.items() if k not in prof.frequencies}
    for k, v in counts.items():
        if k in index:
            batch[index[k]] += v
        elif k in prof.frequencies:
            batch[-2] += v
        else:
            batch[-1] += v
    out["unseen"] = int(sum(unseen.values()))
    out["unseen_categories"] = sorted(unseen, key=lambda k: -unseen[k])[:_MAX_LISTED_UNSEEN]
    keep = (ref + batch) > 0
    out.update(_grouped_stats(ref[keep], batch[keep], None))
    return out


def _score_drift(profile: ReferenceProfile, scores: np.ndarray) -> dict[str, Any]:
    s = _as_float(scores)
    nan = np.isnan(s)
    s = s[~nan]
    out: dict[str, Any] = {"n": int(s.size), "nulls": int(np.count_nonzero(nan))}
    if s.size == 0 or not profile.score_histogram:
        return out
    ref = np.asarray(profile.score_histogram, dtype=np.float64)
    batch = score_histogram(s).astype(np.float64)
    out["out_of_range"] = int(np.count_nonzero((s < 0) | (s > 1)))
    out["batch_mean"] = _finite(s.mean())
    out["reference_mean"] = profile.score_mean
    out.update(_grouped_stats(ref, batch, merge_groups(ref)))
    ks, w1 = cdf_distances(np.linspace(0.0, 1.0, SCORE_BINS + 1), ref, batch)
    mids = (np.arange(SCORE_BINS) + 0.5) / SCORE_BINS
    mu = float(np.average(mids, weights=ref)) if ref.sum() else 0.0
    sd = math.sqrt(float(np.average((mids - mu) ** 2, weights=ref))) if ref.sum() else 0.0
    out["ks"] = _finite(ks)
    out["ks_pvalue"] = _finite(ks_pvalue(ks, int(ref.sum()), int(s.size)))
    out["wasserstein"] = _finite(w1 / (sd if sd > 0 else 1.0))
    return out


def measure_drift(
    profile: ReferenceProfile,
    batch: pd.DataFrame,
    cfg: DriftTrigger,
    *,
    features: Sequence[Feature] | None = None,
    scores: np.ndarray | None = None,
    alpha: float | None = None,
) -> DriftReport:
    """Drift of every profiled feature (and of the model's scores, if given) in one batch.

    `features` (the spec's) supply per-feature thresholds and the `critical` flag. `cfg.enabled` is
    not consulted: drift is always measured; `alpha` defaults to `cfg.alpha`; whether it triggers a retrain is the policy's call.
    """
    alpha = cfg.alpha if alpha is None else alpha
    by_name = {f.name: f for f in features or []}
    n_rows = len(batch)
    flaggable = n_rows >= cfg.min_rows
    report_features: dict[str, FeatureDrift] = {}
    for name in profile.features:
        spec_feature = by_name.get(name)
        num_prof = profile.numeric.get(name)
        kind: Literal["numeric", "categorical"] = "numeric" if num_prof is not None else "categorical"
        ref_nulls = num_prof.nulls if num_prof is not None else profile.categorical[name].nulls
        ref_total = (num_prof.count if num_prof is not None else profile.categorical[name].count) + ref_nulls
        if name not in batch.columns:
            stats: dict[str, Any] = {"n": 0, "nulls": 0, "missing": True}
        elif num_prof is not None:
            stats = _numeric_drift(num_prof, _as_float(batch[name]))
            stats["reference_mean"] = num_prof.mean
        else:
            stats = _categorical_drift(profile.categorical[name], batch[name])
        stat, threshold = _resolve(kind, cfg, spec_feature)
        enough = flaggable and stats["n"] >= cfg.min_rows
        report_features[name] = FeatureDrift(
            name=name,
            kind=kind,
            null_share=stats["nulls"] / n_rows if n_rows else 0.0,
            reference_null_share=ref_nulls / ref_total if ref_total else 0.0,
            critical=bool(spec_feature and spec_feature.critical),
            **stats,
            **_verdict(stats, stat, threshold, alpha, enough),
        )
    unknown = sorted(set(by_name) - set(profile.features))
    if unknown:
        log.warning("features not in the reference profile, not measured: %s", unknown)

    score = None
    if scores is not None and profile.score_histogram:
        sstats = _score_drift(profile, scores)
        sstat, sthr = _resolve("score", cfg, None)
        score = FeatureDrift(
            name="prediction_score",
            kind="score",
            **sstats,
            **_verdict(sstats, sstat, sthr, alpha, flaggable and sstats["n"] >= cfg.min_rows),
        )

    measured = [f for f in report_features.values() if f.n > 0]
    drifted = [f.name for f in measured if f.drifted]
    critical = [f.name for f in measured if f.drifted and f.critical]
    share = len(drifted) / len(measured) if measured else 0.0
    psis = [f.psi for f in measured if f.psi is not None]
    reasons: list[str] = []
    if not flaggable:
        reasons.append(f"batch of {n_rows} rows is below min_rows={cfg.min_rows}: measured, not flagged")
    if measured and share >= cfg.share and drifted:
        reasons.append(f"{len(drifted)}/{len(measured)} features drifted (share {share:.2f} >= {cfg.share})")
    if critical:
        reasons.append(f"critical features drifted: {critical}")
    dataset_drift = bool(drifted) and (share >= cfg.share or bool(critical))
    if not dataset_drift and flaggable:
        reasons.append(f"no dataset drift: {len(drifted)}/{len(measured)} features drifted")
    return DriftReport(
        dataset_drift=dataset_drift,
        drift_share=share,
        drift_score=max(psis) if psis else None,
        drifted_features=drifted,
        critical_drifted=critical,
        features=report_features,
        score=score,
        n_rows=n_rows,
        below_min_rows=not flaggable,
        statistic=cfg.statistic,
        threshold=cfg.threshold,
        share=cfg.share,
        min_rows=cfg.min_rows,
        alpha=alpha,
        reasons=reasons,
    )
