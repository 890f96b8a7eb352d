"""Row-level checks on an incoming batch: admission (empty, bad or future times) and rows vs history.

Pure: frames and a spec in, a `BatchCheck` out; the caller reads files, keeps the history index and
appends. A row's *key* is `data.time_column` plus `data.checks.key`; its *content* is the features and
the label. Both are uint64 hashes of canonical values (times as UTC microseconds, numerics as float64,
categories and labels as text), so CSV and parquet reads of the same rows match, whatever the dtypes or
row order. The history is an *index*: the distinct (key, content) pairs of every ingested row, 16 bytes
a row. Semantics and order: docs/ingest.md.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from evergreen.spec import ModelSpec

logger = logging.getLogger(__name__)

Status = Literal["ok", "duplicate", "rejected"]
INDEX_COLUMNS = ["key", "content"]
EXAMPLES = 3  # example keys named in a conflict reason
_MISSING = "\x00<NA>"  # stands for a missing category, so it hashes apart from any real text


@dataclass(frozen=True)
class BatchCounts:
    """How the received rows split; received = duplicates_in_batch + duplicates_of_history + conflicts + new."""

    received: int = 0
    duplicates_in_batch: int = 0  # repeats of an earlier row of the same batch (same key, same content)
    duplicates_of_history: int = 0  # rows already ingested (same key, same content)
    conflicts: int = 0  # rows whose key is known with other content (in history or in the batch)
    conflicting_keys: int = 0
    new: int = 0


@dataclass(frozen=True)
class BatchCheck:
    """The verdict on one batch: `rows` are what to append (empty unless status is ok)."""

    status: Status
    rows: pd.DataFrame
    counts: BatchCounts
    reasons: tuple[str, ...] = ()
    example_keys: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def message(self) -> str:
        """One line for logs and errors, e.g. 'rejected: empty batch: 0 rows'."""
        return f"{self.status}: " + ("; ".join(self.reasons) or f"{self.counts.new} new rows")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (for quarantine reports and events); the rows are left out."""
        return {
            "status": self.status,
            "counts": asdict(self.counts),
            "reasons": list(self.reasons),
            "example_keys": list(self.example_keys),
        }


# --- canonical values and hashes ------------------------------------------------------------------


def _utc_naive(values: pd.Series) -> pd.Series:
    """Datetimes as naive UTC (naive input is taken to be UTC); unparseable values become NaT."""
    times = (
        values if pd.api.types.is_datetime64_any_dtype(values) else pd.to_datetime(values, errors="coerce")
    )
    if isinstance(times.dtype, pd.DatetimeTZDtype):
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    return times


def _time_values(values: pd.Series) -> np.ndarray:
    # Microseconds: pandas' default unit for parsed text, and wide enough for any real timestamp.
    return _utc_naive(values).dt.as_unit("us").to_numpy().view("int64")


def _numeric_values(values: pd.Series) -> np.ndarray:
    out = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    out = out + 0.0  # -0.0 becomes 0.0
    out[np.isnan(out)] = np.nan  # one NaN bit pattern
    return out


def _text_of(values: pd.Series) -> np.ndarray:
    """Text for known (non-missing) values; integral numbers print without '.0' so 1 and 1.0 agree."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        nums = _numeric_values(values)
        integral = bool(np.all(np.isfinite(nums) & (nums == np.round(nums)) & (np.abs(nums) < 2**53)))
        return (nums.astype("int64") if integral else nums).astype(str).astype(object)
    return values.astype(str).to_numpy(dtype=object)


def _text_hashes(values: pd.Series) -> np.ndarray:
    """Hashes of categories and labels as text; the text is built once per distinct value, not per row."""
    codes, uniques = pd.factorize(values)  # missing values get code -1
    text = np.append(_text_of(pd.Series(uniques)), np.array([_MISSING], dtype=object))
    return pd.util.hash_array(text)[codes]  # code -1 picks the trailing _MISSING


def _canonical(frame: pd.DataFrame, columns: list[str], spec: ModelSpec) -> pd.DataFrame:
    kinds = {f.name: f.type for f in spec.features}
    data: dict[str, Any] = {}
    for col in columns:
        if col == spec.data.time_column:
            data[col] = _time_values(frame[col])
        elif kinds.get(col) == "numeric":
            data[col] = _numeric_values(frame[col])
        else:  # categorical features and the label
            data[col] = _text_hashes(frame[col])
    return pd.DataFrame(data, index=range(len(frame)))


def _hash(frame: pd.DataFrame, columns: list[str], spec: ModelSpec) -> np.ndarray:
    return pd.util.hash_pandas_object(_canonical(frame, columns, spec), index=False).to_numpy(dtype="uint64")


def _pairs(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    key, content = _hash(frame, key_columns(spec), spec), _hash(frame, content_columns(spec), spec)
    return pd.DataFrame({"key": key, "content": content})


def _pair_hash(pairs: pd.DataFrame) -> pd.Series:
    """One uint64 per (key, content) pair, so membership is a single hash-table lookup."""
    return pd.util.hash_pandas_object(pairs[INDEX_COLUMNS], index=False)


def _distinct(pairs: pd.DataFrame) -> pd.DataFrame:
    # Dedupe on the single pair hash: several times faster than drop_duplicates over two columns.
    return pairs[~_pair_hash(pairs).duplicated().to_numpy()].reset_index(drop=True)


def key_columns(spec: ModelSpec) -> list[str]:
    """The columns that identify a row: the time column, then `data.checks.key`."""
    return [spec.data.time_column, *spec.data.checks.key]


def content_columns(spec: ModelSpec) -> list[str]:
    """The columns a duplicate must repeat: the features and the label."""
    return [*spec.feature_names, spec.data.target]


def index_rows(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """The history index of `frame`: its distinct (key, content) uint64 pairs (columns INDEX_COLUMNS)."""
    if frame.empty:
        return empty_index()
    return _distinct(_pairs(frame, spec))


def empty_index() -> pd.DataFrame:
    """The index of a dataset with no rows yet."""
    return pd.DataFrame({c: np.array([], dtype="uint64") for c in INDEX_COLUMNS})


def merge_index(index: pd.DataFrame, rows: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """The index after appending `rows` (call it with BatchCheck.rows once they are committed)."""
    merged = pd.concat([index[INDEX_COLUMNS], index_rows(rows, spec)], ignore_index=True)
    return _distinct(merged.astype("uint64"))


# --- admission: checks that need no history -------------------------------------------------------


def admit(batch: pd.DataFrame, spec: ModelSpec, now: datetime | pd.Timestamp) -> list[str]:
    """Reasons to refuse the batch before looking at history: no rows, missing columns, bad or future times.

    `now` is the caller's clock (UTC if naive). An empty list means admitted.
    """
    if len(batch) == 0:
        return [f"empty batch: 0 rows (a header-only file?); columns {list(map(str, batch.columns))}"]
    missing = [c for c in spec.columns if c not in batch.columns]
    if missing:
        return [f"missing columns {missing}"]
    tcol = spec.data.time_column
    times = _utc_naive(batch[tcol])
    reasons = []
    unparsed = times.isna()
    if unparsed.any():
        rows = (np.flatnonzero(unparsed.to_numpy())[:EXAMPLES] + 1).tolist()  # 1 = first row after a header
        reasons.append(
            f"{int(unparsed.sum())} rows have a missing or unparseable {tcol} (data rows {rows}, ...)"
        )
    limit = future_limit(spec, now)
    if limit is not None:
        late = times > limit
        if late.any():
            reasons.append(
                f"{int(late.sum())} rows have {tcol} after {limit} (now + data.checks.max_future "
                f"{spec.data.checks.max_future}); latest {times.max()}"
            )
    return reasons


def future_limit(spec: ModelSpec, now: datetime | pd.Timestamp) -> pd.Timestamp | None:
    """The latest admissible time, as naive UTC; None when data.checks.max_future is off."""
    if spec.data.checks.max_future is None:
        return None
    stamp = pd.Timestamp(now)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp + pd.Timedelta(spec.data.checks.max_future)


# --- rows against history -------------------------------------------------------------------------


def _describe_key(batch: pd.DataFrame, row: int, spec: ModelSpec) -> str:
    return ", ".join(f"{c}={batch[c].iloc[row]}" for c in key_columns(spec))


def _classify(
    batch: pd.DataFrame, index: pd.DataFrame | None, spec: ModelSpec
) -> tuple[pd.DataFrame, BatchCounts]:
    """Per batch row: key, content, and which class it falls in (vectorised; O(batch + index))."""
    index = empty_index() if index is None else index
    pairs = _pairs(batch, spec)
    pair = _pair_hash(pairs)
    first = ~pair.duplicated()
    # A key seen with two contents in the batch itself is as contradictory as one that differs from history.
    per_key = pairs.loc[first, "key"].value_counts()
    in_batch_conflict = pairs["key"].isin(per_key.index[per_key > 1])
    known_pair = pair.isin(_pair_hash(index))
    history_conflict = pairs["key"].isin(index["key"]) & ~known_pair
    conflict = (in_batch_conflict | history_conflict) & (spec.data.checks.conflicts != "allow")
    pairs["cls"] = np.select(
        [conflict, ~first, known_pair], ["conflict", "dup_batch", "dup_history"], default="new"
    )
    n = pairs["cls"].value_counts()
    counts = BatchCounts(
        received=len(batch),
        duplicates_in_batch=int(n.get("dup_batch", 0)),
        duplicates_of_history=int(n.get("dup_history", 0)),
        conflicts=int(n.get("conflict", 0)),
        conflicting_keys=int(pairs.loc[conflict, "key"].nunique()),
        new=int(n.get("new", 0)),
    )
    return pairs, counts


def check_rows(batch: pd.DataFrame, index: pd.DataFrame | None, spec: ModelSpec) -> BatchCheck:
    """Duplicates and conflicts of an admitted batch against itself and the history index."""
    checks = spec.data.checks
    pairs, counts = _classify(batch, index, spec)
    conflict_rows = np.flatnonzero((pairs["cls"] == "conflict").to_numpy())
    first_of_key = conflict_rows[~pairs["key"].iloc[conflict_rows].duplicated().to_numpy()]
    examples = tuple(_describe_key(batch, int(i), spec) for i in first_of_key[:EXAMPLES])
    dupes = counts.duplicates_in_batch + counts.duplicates_of_history
    reasons: list[str] = []
    if counts.conflicts:
        reasons.append(
            f"{counts.conflicts} rows on {counts.conflicting_keys} keys conflict with ingested rows or each "
            f"other (same key, different features or label), e.g. {'; '.join(examples)}"
            + ("; skipped, the ingested rows stay" if checks.conflicts == "skip" else "")
        )
    if dupes:
        reasons.append(
            f"{counts.duplicates_of_history} rows were already ingested and {counts.duplicates_in_batch} "
            "repeat rows of this batch" + ("; skipped" if checks.duplicates == "skip" else "")
        )
    status: Status = "ok"
    if counts.conflicts and checks.conflicts == "reject":
        status = "rejected"
    elif counts.new == 0:
        # Nothing new (e.g. a re-sent or shuffled copy): the idempotent answer, whatever the duplicates policy.
        status = "duplicate"
    elif dupes and checks.duplicates == "reject":
        status = "rejected"
    rows = (
        batch.iloc[np.flatnonzero((pairs["cls"] == "new").to_numpy())] if status == "ok" else batch.iloc[:0]
    )
    return BatchCheck(status, rows.reset_index(drop=True), counts, tuple(reasons), examples)


def check_batch(
    batch: pd.DataFrame, history_index: pd.DataFrame | None, spec: ModelSpec, now: datetime | pd.Timestamp
) -> BatchCheck:
    """Admission, then rows vs history: status ok (append `rows`), duplicate (nothing new) or rejected.

    `history_index` is `index_rows(dataset)` (or kept up to date with `merge_index`); None: no history.
    """
    reasons = admit(batch, spec, now)
    if reasons:
        logger.info("batch refused: %s", "; ".join(reasons))
        return BatchCheck(
            "rejected", batch.iloc[:0].reset_index(drop=True), BatchCounts(len(batch)), tuple(reasons)
        )
    result = check_rows(batch, history_index, spec)
    logger.info("batch checked: %s", result.message())
    return result
