"""Slice gates (`gate.slices`): no slice of the hold-out may regress by more than the tolerance. Pure; no prefect.

A categorical feature is sliced by category; a numeric one by `NUMERIC_BINS` quantile bins of the hold-out
(pandas.qcut, duplicate edges dropped). Slices smaller than `gate.slice_min_rows`, or where the metric is
undefined (e.g. roc_auc on one class), are reported but not judged.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from pydantic import BaseModel

from evergreen.gate import GateDecision
from evergreen.metrics import metric_value
from evergreen.spec import HIGHER_IS_BETTER

NUMERIC_BINS = 4


class SliceRow(BaseModel):
    """One slice of the hold-out and how both models did on it."""

    feature: str
    slice: str
    rows: int
    champion: float | None
    challenger: float | None
    delta: float | None  # challenger - champion, sign flipped when lower is better: negative = regression
    verdict: str  # ok | regressed | too_small | undefined


def _groups(col: pd.Series) -> pd.Series:
    """Slice labels per row: the category, or the quantile bin for numeric features."""
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return pd.qcut(col, q=NUMERIC_BINS, duplicates="drop").astype(str)
    return col.astype(str)


def _judge(
    feature: str, label: str, y: np.ndarray, chal: np.ndarray, champ: np.ndarray, *,
    metric: str, tolerance: float, min_rows: int,
) -> SliceRow:  # fmt: skip
    """One slice's row: too_small, undefined, or the signed delta and its verdict."""
    row = SliceRow(
        feature=feature,
        slice=label,
        rows=len(y),
        champion=None,
        challenger=None,
        delta=None,
        verdict="too_small",
    )
    if len(y) < min_rows:
        return row
    champ_v, chal_v = metric_value(metric, y, champ), metric_value(metric, y, chal)
    if math.isnan(champ_v) or math.isnan(chal_v):
        return row.model_copy(update={"verdict": "undefined"})
    delta = (1.0 if HIGHER_IS_BETTER[metric] else -1.0) * (chal_v - champ_v)
    return row.model_copy(
        update={
            "champion": champ_v,
            "challenger": chal_v,
            "delta": delta,
            "verdict": "regressed" if delta < -tolerance else "ok",
        }
    )


def slice_table(
    frame: pd.DataFrame,
    features: list[str],
    y: np.ndarray,
    challenger_scores: np.ndarray,
    champion_scores: np.ndarray,
    *,
    metric: str,
    tolerance: float,
    min_rows: int,
) -> list[SliceRow]:
    """Every slice of every feature in `features`, with a verdict."""
    rows: list[SliceRow] = []
    for feature in features:
        labels = _groups(frame[feature]).to_numpy()
        for label in sorted(set(labels)):
            mask = labels == label
            rows.append(
                _judge(
                    feature,
                    str(label),
                    y[mask],
                    challenger_scores[mask],
                    champion_scores[mask],
                    metric=metric,
                    tolerance=tolerance,
                    min_rows=min_rows,
                )  # fmt: skip
            )
    return rows


def slice_reasons(rows: list[SliceRow], tolerance: float) -> list[str]:
    """One rejection reason per regressed slice, naming it."""
    return [
        f"slice {r.feature}={r.slice} ({r.rows} rows) regressed by {-(r.delta or 0.0):.4f} > tolerance {tolerance:.4f}"
        for r in rows
        if r.verdict == "regressed"
    ]


def with_slices(decision: GateDecision, rows: list[SliceRow], tolerance: float) -> GateDecision:
    """Attach the slice table; a regressed slice turns a pass into a rejection naming that slice."""
    reasons = slice_reasons(rows, tolerance)
    return decision.model_copy(
        update={
            "slices": [r.model_dump() for r in rows],
            "passed": decision.passed and not reasons,
            "reasons": [*decision.reasons, *reasons],
        }
    )
