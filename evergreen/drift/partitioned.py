"""Drift of a partitioned batch: per-partition sufficient statistics against the FIXED profile, summed.

The reference profile's bin edges and categories are fixed, so a batch split into partitions can be
binned partition by partition and the counts added: the sums are exactly the counts of the whole
batch. The statistics (PSI, JS, chi-square, KS, Wasserstein, out-of-range, unseen, verdicts) are
then computed once, by the same code measure_drift uses (measure.numeric_stats, categorical_stats,
score_stats, report_from_stats), so they are the single-process numbers. The one float that is a
sum of partition sums, `batch_mean`, agrees to rounding (about 1e-15 relative), not bit for bit.

This module is pure (numpy/pandas): the engine that maps `partition_stats` over partitions and
folds them with `merge_stats` lives in adapters/dask_engine.py. Partials are small (features x
bins), so they travel cheaply between workers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from evergreen.drift.binning import Binned, bin_batch
from evergreen.drift.measure import categorical_stats, numeric_stats, report_from_stats, score_stats
from evergreen.drift.profile import ReferenceProfile, as_float, category_counts, score_histogram
from evergreen.drift.report import DriftReport
from evergreen.spec import DriftTrigger, Feature


@dataclass
class NumericPartial:
    """One numeric column's bin counts and tallies over some rows (adds up across partitions)."""

    counts: np.ndarray
    below: int = 0
    above: int = 0
    low: float = float("inf")  # smallest value below the reference min (when below > 0)
    high: float = float("-inf")  # largest value above the reference max (when above > 0)
    n: int = 0
    nulls: int = 0
    total: float = 0.0


@dataclass
class CategoricalPartial:
    counts: dict[str, int] = field(default_factory=dict)
    nulls: int = 0


@dataclass
class BatchStats:
    """Sufficient statistics of a batch (or a partition of it) for drift against one profile."""

    n_rows: int = 0
    numeric: dict[str, NumericPartial] = field(default_factory=dict)
    categorical: dict[str, CategoricalPartial] = field(default_factory=dict)
    present: set[str] = field(default_factory=set)  # profiled columns present in the batch
    score: NumericPartial | None = None  # counts = the SCORE_BINS histogram; below+above = out of range


def _numeric_partial(edges: np.ndarray, values: np.ndarray) -> NumericPartial:
    nan = np.isnan(values)
    nulls = int(np.count_nonzero(nan))
    x = values[~nan] if nulls else values
    if x.size == 0 or edges.size < 2:  # nothing to bin (or an empty reference: only n and nulls count)
        return NumericPartial(np.zeros(max(edges.size - 1, 0), dtype=np.int64), n=int(x.size), nulls=nulls)
    b = bin_batch(edges, x)
    return NumericPartial(
        b.counts.astype(np.int64),
        b.below,
        b.above,
        b.low if b.below else float("inf"),
        b.high if b.above else float("-inf"),
        int(x.size),
        nulls,
        float(x.sum()),
    )


def partition_stats(
    profile: ReferenceProfile, part: pd.DataFrame, score_column: str | None = None
) -> BatchStats:
    """Bin one partition against the profile (the map step)."""
    out = BatchStats(n_rows=len(part))
    for name, prof in profile.numeric.items():
        if name in part.columns:
            out.present.add(name)
            out.numeric[name] = _numeric_partial(
                np.asarray(prof.edges, dtype=np.float64), as_float(part[name])
            )
    for name in profile.categorical:
        if name in part.columns:
            out.present.add(name)
            counts, nulls = category_counts(part[name])
            out.categorical[name] = CategoricalPartial(counts, nulls)
    if score_column is not None and profile.score_histogram and score_column in part.columns:
        s = as_float(part[score_column])
        nan = np.isnan(s)
        s = s[~nan]
        oor = int(np.count_nonzero((s < 0) | (s > 1)))
        out.score = NumericPartial(
            score_histogram(s).astype(np.int64),
            below=oor,
            n=int(s.size),
            nulls=int(nan.sum()),
            total=float(s.sum()),
        )
    return out


def _merge_numeric(a: NumericPartial, b: NumericPartial) -> NumericPartial:
    return NumericPartial(
        a.counts + b.counts,
        a.below + b.below,
        a.above + b.above,
        min(a.low, b.low),
        max(a.high, b.high),
        a.n + b.n,
        a.nulls + b.nulls,
        a.total + b.total,
    )


def merge_stats(a: BatchStats, b: BatchStats) -> BatchStats:
    """Add two partitions' statistics (the reduce step; associative and commutative up to float sums)."""
    out = BatchStats(n_rows=a.n_rows + b.n_rows, present=a.present | b.present)
    for name in a.numeric.keys() | b.numeric.keys():
        pa, pb = a.numeric.get(name), b.numeric.get(name)
        out.numeric[name] = _merge_numeric(pa, pb) if pa and pb else (pa or pb)  # type: ignore[assignment]
    for name in a.categorical.keys() | b.categorical.keys():
        ca = a.categorical.get(name) or CategoricalPartial()
        cb = b.categorical.get(name) or CategoricalPartial()
        counts = dict(ca.counts)
        for k, v in cb.counts.items():
            counts[k] = counts.get(k, 0) + v
        out.categorical[name] = CategoricalPartial(counts, ca.nulls + cb.nulls)
    if a.score is not None and b.score is not None:
        out.score = _merge_numeric(a.score, b.score)
    else:
        out.score = a.score or b.score
    return out


def merge_all(parts: Iterable[BatchStats]) -> BatchStats:
    """Fold any number of partials (in order, so the float sums are reproducible)."""
    out = BatchStats()
    for p in parts:
        out = merge_stats(out, p)
    return out


def report_from_batch_stats(
    profile: ReferenceProfile,
    stats: BatchStats,
    cfg: DriftTrigger,
    *,
    features: Sequence[Feature] | None = None,
    alpha: float | None = None,
) -> DriftReport:
    """The DriftReport of the whole batch from its merged statistics (measure_drift's numbers).

    Multivariate drift needs the rows themselves, so it is not computed here (the report says so
    when `cfg.multivariate.enabled`).
    """
    per_feature: dict[str, dict] = {}
    for name in stats.present:
        if name in profile.numeric:
            p = stats.numeric[name]
            binned = Binned(p.counts, p.below, p.above, p.low, p.high)
            per_feature[name] = numeric_stats(profile.numeric[name], p.n, p.nulls, p.total, binned)
        else:
            c = stats.categorical[name]
            per_feature[name] = categorical_stats(profile.categorical[name], c.counts, c.nulls)
    sstats = None
    if stats.score is not None:
        s = stats.score
        sstats = score_stats(profile, s.n, s.nulls, s.total, s.counts, s.below)
    note = "multivariate drift skipped: partitioned batch" if cfg.multivariate.enabled else None
    return report_from_stats(
        profile,
        per_feature,
        cfg,
        n_rows=stats.n_rows,
        features=features,
        score_stats=sstats,
        alpha=alpha,
        note=note,
    )
