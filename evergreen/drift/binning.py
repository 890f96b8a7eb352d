"""Binning a batch against a profile's edges (with a fast lookup-table path) and merging bins into deciles."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

PSI_GROUPS = 10
"""PSI, JS and chi-square use the fine bins merged into this many reference-mass groups (deciles)."""


_GRID_CELLS = 1 << 16  # lookup-table cells of the fast binning path
_FAST_MIN_ROWS = 50_000


class Binned(NamedTuple):
    """A batch column binned against a profile's edges, with its out-of-range tallies."""

    counts: np.ndarray  # per fine bin, out-of-range values in the outer bins
    below: int  # values < edges[0]
    above: int  # values > edges[-1]
    low: float  # batch minimum (meaningful when below > 0)
    high: float  # batch maximum (meaningful when above > 0)


def _bin_plain(edges: np.ndarray, x: np.ndarray) -> Binned:
    """np.searchsorted on every value: the reference path, used for small or awkward batches."""
    cuts = edges[1:-1]
    counts = np.bincount(np.searchsorted(cuts, x, side="left"), minlength=cuts.size + 1)
    low, high = float(x.min()), float(x.max())
    below = int(np.count_nonzero(x < edges[0])) if low < edges[0] else 0
    above = int(np.count_nonzero(x > edges[-1])) if high > edges[-1] else 0
    return Binned(counts, below, above, low, high)


def bin_batch(edges: np.ndarray, x: np.ndarray) -> Binned:
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
    return Binned(counts, below, above, low, high)


def bin_counts(edges: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Counts of non-NaN `x` in the profile's bins: bin i is (edges[i], edges[i+1]], with bin 0
    open below and the last bin open above (so out-of-range values land in the outer bins)."""
    return bin_batch(np.asarray(edges, dtype=np.float64), x).counts


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
