"""The replayed history: a labelled, time-sorted frame cut into batches, with marked drift points."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from evergreen import training
from evergreen.spec import ModelSpec, _check_duration

logger = logging.getLogger(__name__)


def batch_bounds(
    times: pd.Series, *, period: str | None = None, rows: int | None = None
) -> list[tuple[int, int]]:
    """Row ranges [start, end) of consecutive batches of a time-sorted column.

    By period: calendar bins of `period` from the first timestamp's midnight (as
    datasets.weekly_batches); empty bins are skipped. By rows: chunks of `rows` (the last may be short).
    """
    n = len(times)
    if (period is None) == (rows is None):
        raise ValueError("give exactly one of a batch period or a batch row count")
    if n == 0:
        return []
    if rows is not None:
        if rows < 1:
            raise ValueError("batch rows must be positive")
        return [(s, min(s + rows, n)) for s in range(0, n, rows)]
    step = pd.Timedelta(_check_duration(period))
    origin = times.iloc[0].normalize()
    key = ((times - origin) // step).to_numpy(dtype=np.int64)
    cuts = np.flatnonzero(np.diff(key)) + 1
    edges = [0, *cuts.tolist(), n]
    return [(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


@dataclass(frozen=True)
class Replay:
    """A labelled, time-sorted history cut into batches; shared read-only by every policy."""

    spec: ModelSpec
    frame: pd.DataFrame
    bounds: tuple[tuple[int, int], ...]
    warmup: int
    batching: str
    marked: tuple[int, ...] = ()
    y: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0, dtype=np.int8))

    @property
    def n_batches(self) -> int:
        return len(self.bounds)

    @property
    def n_scored(self) -> int:
        return self.n_batches - self.warmup

    def time(self, row: int) -> pd.Timestamp:
        return self.frame[self.spec.data.time_column].iloc[row]

    def batch_start(self, i: int) -> pd.Timestamp:
        return self.time(self.bounds[i][0])

    def batch_end(self, i: int) -> pd.Timestamp:
        return self.time(self.bounds[i][1] - 1)


def _drift_batch(d: str | int | pd.Timestamp, starts: pd.DatetimeIndex, warmup: int) -> int:
    """The batch a marked drift point falls in: a batch number, or the batch whose start precedes a timestamp."""
    if isinstance(d, bool):
        raise ValueError(f"drift point {d!r} is neither a batch number nor a timestamp")
    if isinstance(d, int | np.integer):
        k = int(d)
        if not 0 <= k < len(starts):
            raise ValueError(f"drift point batch {k} is outside 0..{len(starts) - 1}")
    else:
        try:
            ts = pd.Timestamp(d)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"drift point {d!r} is neither a batch number nor a timestamp") from exc
        k = int(starts.searchsorted(ts, side="right")) - 1
        if k < 0:
            raise ValueError(f"drift point {d} is before the data starts ({starts[0]})")
    if k < warmup:
        raise ValueError(f"drift point {d!r} falls in warm-up batch {k}; the first scored batch is {warmup}")
    return k


def prepare(
    frame: pd.DataFrame,
    spec: ModelSpec,
    *,
    batch_period: str | None = None,
    batch_rows: int | None = None,
    warmup: int = 4,
    drifts: Sequence[str | int | pd.Timestamp] = (),
) -> Replay:
    """Sort, keep labelled rows, cut into batches and locate marked drifts. Default batches: 7 days."""
    tcol = spec.data.time_column
    missing = [c for c in spec.columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the data lacks the spec's columns {missing}")
    frame = frame[spec.columns]
    if not pd.api.types.is_datetime64_any_dtype(frame[tcol]):
        frame = frame.assign(**{tcol: pd.to_datetime(frame[tcol])})
    unlabelled = int(frame[spec.data.target].isna().sum())
    if unlabelled:
        logger.info("dropping %d unlabelled rows: a backtest scores labelled rows only", unlabelled)
    frame = training.sort_by_time(frame.dropna(subset=[spec.data.target]), tcol)
    if batch_period is None and batch_rows is None:
        batch_period = "7D"
    bounds = batch_bounds(frame[tcol], period=batch_period, rows=batch_rows)
    if warmup < 1:
        raise ValueError("warmup must be at least 1 batch (the first champion trains on it)")
    if len(bounds) <= warmup:
        raise ValueError(f"{len(bounds)} batches leave nothing to score after {warmup} warm-up batches")
    starts = pd.DatetimeIndex([frame[tcol].iloc[s] for s, _ in bounds])
    marked = [_drift_batch(d, starts, warmup) for d in drifts]
    batching = f"{batch_period} batches" if batch_period else f"{batch_rows}-row batches"
    return Replay(
        spec=spec,
        frame=frame,
        bounds=tuple(bounds),
        warmup=warmup,
        batching=batching,
        marked=tuple(sorted(set(marked))),
        y=training.labels(frame, spec),
    )
