"""Delayed labels (spec `data.delayed_labels`): check a labels file against the rows already ingested.

Pure: frames and a spec in, a `LabelCheck` out; adapters/dvc_ingest.py reads the committed rows and
commits the new labels. A labels file has the id column and the target. Ids and labels are compared as
text (integral numbers without `.0`), so a CSV's `7` matches a parquet's `7.0`. Semantics: docs/ingest.md
"Delayed labels".
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from evergreen.spec import ModelSpec

Status = Literal["ok", "duplicate", "rejected"]
EXAMPLES = 3


@dataclass(frozen=True)
class LabelCounts:
    """How the received labels split; received = invalid + unknown + conflicts + repeats + already + new."""

    received: int = 0
    invalid: int = 0  # a missing id or label, or a label outside data.labels
    unknown_ids: int = 0  # ids no ingested row has
    conflicts: int = 0  # ids labelled otherwise before, or twice in this file with different labels
    repeats_in_file: int = 0  # the same (id, label) again in this file
    already_labelled: int = 0  # the ingested row already has this label
    new: int = 0


@dataclass(frozen=True)
class LabelCheck:
    """The verdict on one labels file: `labels` (id column, target) are what to commit (empty unless ok)."""

    status: Status
    labels: pd.DataFrame
    counts: LabelCounts
    reasons: tuple[str, ...] = ()
    example_ids: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def message(self) -> str:
        return f"{self.status}: " + ("; ".join(self.reasons) or f"{self.counts.new} new labels")

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "counts": asdict(self.counts),
            "reasons": list(self.reasons),
            "example_ids": list(self.example_ids),
        }


def id_column(spec: ModelSpec) -> str:
    if spec.data.delayed_labels is None:
        raise ValueError(
            f"model {spec.name} does not declare data.delayed_labels: its rows carry their labels at ingest"
        )
    return spec.data.delayed_labels.id_column


def text(values: pd.Series) -> pd.Series:
    """Canonical text of ids and labels (`7`, `7.0` and "7" agree); missing stays missing (None)."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype(object).map(str)
    nums = pd.to_numeric(values, errors="coerce").astype("float64")
    integral = np.isfinite(nums) & (nums == np.round(nums)) & (nums.abs() < 2**53)
    out = values.astype(object).map(lambda v: None if pd.isna(v) else str(v))
    out = out.where(~(nums.notna() & ~integral), nums.map(repr))
    return out.where(~integral, nums.where(integral, 0).astype("int64").astype(str))


def labels_hash(labels: pd.DataFrame, spec: ModelSpec) -> str:
    """Order-insensitive content hash of a labels file (the commit trailer and pending marker key)."""
    pairs = sorted(zip(text(labels[id_column(spec)]), text(labels[spec.data.target]), strict=True), key=str)
    return hashlib.sha256(repr(pairs).encode()).hexdigest()[:32]


def _examples(ids: pd.Series) -> tuple[str, ...]:
    return tuple(str(v) for v in ids.drop_duplicates().head(EXAMPLES))


def _invalid(ids: pd.Series, labels: pd.Series, spec: ModelSpec) -> pd.Series:
    bad = ids.isna() | labels.isna()
    if spec.data.labels:
        bad |= ~labels.isin(text(pd.Series(list(spec.data.labels)))) & labels.notna()
    return bad


def check_labels(file: pd.DataFrame, rows: pd.DataFrame, spec: ModelSpec) -> LabelCheck:
    """Check a labels file against the dataset's committed rows (delayed labels already applied)."""
    idc, target = id_column(spec), spec.data.target
    missing = [c for c in (idc, target) if c not in file.columns]
    if missing or file.empty:
        why = f"missing columns {missing}" if missing else "empty labels file: 0 rows"
        return LabelCheck("rejected", file.iloc[:0], LabelCounts(received=len(file)), (why,))
    ids, labels = text(file[idc]).reset_index(drop=True), text(file[target]).reset_index(drop=True)
    known = pd.Series(text(rows[target]).to_numpy(), index=text(rows[idc]).to_numpy())
    known = known[~known.index.duplicated()]
    invalid = _invalid(ids, labels, spec)
    unknown = ~invalid & ~ids.isin(known.index)
    labels_per_id = pd.DataFrame({"id": ids, "label": labels})[~invalid].drop_duplicates()
    twice = ids.isin(labels_per_id["id"][labels_per_id["id"].duplicated()])
    before = ids.map(known)
    relabelled = ~invalid & ~unknown & before.notna() & (before != labels)
    conflict = (twice | relabelled) & ~invalid & ~unknown
    repeat = ~invalid & ~unknown & ~conflict & pd.DataFrame({"i": ids, "l": labels}).duplicated()
    already = ~invalid & ~unknown & ~conflict & ~repeat & (before == labels)
    new = ~(invalid | unknown | conflict | repeat | already)
    counts = LabelCounts(
        received=len(file), invalid=int(invalid.sum()), unknown_ids=int(unknown.sum()),
        conflicts=int(conflict.sum()), repeats_in_file=int(repeat.sum()),
        already_labelled=int(already.sum()), new=int(new.sum()),
    )  # fmt: skip
    reasons: list[str] = []
    if counts.invalid:
        allowed = f" or a label outside data.labels {list(spec.data.labels)}" if spec.data.labels else ""
        reasons.append(f"{counts.invalid} rows have a missing {idc} or {target}{allowed}")
    if counts.unknown_ids:
        reasons.append(
            f"{counts.unknown_ids} labels are for unknown {idc} values (no ingested row has them), "
            f"e.g. {', '.join(_examples(ids[unknown]))}"
        )
    if counts.conflicts:
        reasons.append(
            f"{counts.conflicts} labels conflict (the {idc} is labelled otherwise already, or twice in "
            f"this file with different labels), e.g. {', '.join(_examples(ids[conflict]))}"
        )
    examples = _examples(ids[unknown | conflict])
    if reasons:
        return LabelCheck("rejected", file.iloc[:0], counts, tuple(reasons), examples)
    skipped = counts.repeats_in_file + counts.already_labelled
    if skipped:
        reasons.append(
            f"{counts.already_labelled} labels were ingested before and {counts.repeats_in_file} repeat"
        )
    if counts.new == 0:
        return LabelCheck("duplicate", file.iloc[:0], counts, tuple(reasons))
    # Store the ids as the rows hold them, so the join on read needs no conversion.
    row_ids = pd.Series(rows[idc].to_numpy(), index=text(rows[idc]).to_numpy())
    row_ids = row_ids[~row_ids.index.duplicated()]
    out = pd.DataFrame(
        {idc: ids[new].map(row_ids).to_numpy(), target: file[target][new.to_numpy()].to_numpy()}
    )
    return LabelCheck("ok", out, counts, tuple(reasons))
