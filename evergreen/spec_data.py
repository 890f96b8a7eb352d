"""The data part of a model spec: features, the dataset, its row checks and delayed labels."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from evergreen.spec_base import _check_duration, _Strict


class Feature(_Strict):
    """One input column."""

    name: str
    type: Literal["numeric", "categorical"]
    categories: list[str | int | float] | None = Field(
        default=None,
        description="Allowed categories; with allow_unknown=false others are rejected at ingest.",
    )
    allow_unknown: bool = Field(default=False, description="Accept categories not in `categories`.")
    min: float | None = None
    max: float | None = None
    nullable: bool = False
    critical: bool = Field(default=False, description="Drift on this feature alone flags the dataset.")
    drift_threshold: float | None = Field(default=None, description="Per-feature drift threshold.")

    @model_validator(mode="after")
    def _types_agree(self) -> Feature:
        if self.type == "numeric" and self.categories is not None:
            raise ValueError("`categories` is only valid for categorical features")
        if self.type == "categorical" and (self.min is not None or self.max is not None):
            raise ValueError("`min`/`max` are only valid for numeric features")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class DataChecks(_Strict):
    """Row checks at ingest (evergreen.batch_checks, docs/ingest.md): row identity, repeats, future times."""

    key: list[str] = Field(
        default_factory=list,
        description="Features that, with data.time_column, identify a row; default: the time alone.",
    )
    duplicates: Literal["skip", "reject"] = Field(
        default="skip",
        description="Rows already ingested, next to new rows: skip drops them, reject quarantines the batch.",
    )
    conflicts: Literal["reject", "skip", "allow"] = Field(
        default="reject",
        description="Rows whose key is known with other features or label: reject the batch, skip the rows "
        "(the ingested version stays), or allow (append; for keys that are not unique).",
    )
    max_future: str | None = Field(
        default="1D", description="Reject rows timed later than now + this (naive times are UTC); null: off."
    )

    _dur = field_validator("max_future")(classmethod(lambda cls, v: _check_duration(v)))

    @field_validator("key")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"columns listed twice: {v}")
        return v


class LabelRequests(_Strict):
    """`data.delayed_labels.request`: active learning's budget (`evergreen request-labels`, docs/strategies.md)."""

    strategy: Literal["margin", "entropy", "random"] = Field(
        default="margin",
        description="Uncertainty under the champion (margin, entropy), or random (the control).",
    )
    share: float = Field(
        default=0.1, gt=0, le=1, description="At most this share of a batch's unlabelled rows."
    )
    rows_per_period: int | None = Field(
        default=None, ge=1, description="At most this many rows requested per `period`, over all batches."
    )
    period: str = Field(default="7D", description="The budget period of `rows_per_period`.")

    _dur = field_validator("period")(classmethod(lambda cls, v: _check_duration(v)))


class DelayedLabels(_Strict):
    """Labels arrive after their rows (docs/ingest.md "Delayed labels"): rows may come without a target."""

    id_column: str = Field(
        description="Column that identifies a row; `evergreen ingest-labels` files carry it and the target."
    )
    request: LabelRequests = Field(
        default_factory=LabelRequests,
        description="Active learning: which rows to ask labels for, within a budget.",
    )


class DataSpec(_Strict):
    """Where the model's rows live in the DVC data registry, and their key columns."""

    path: str = Field(
        description="Dataset folder inside the registry's DVC-tracked data/ (one parquet part per batch)."
    )
    target: str
    time_column: str
    positive_label: str | int | bool | None = Field(
        default=None, description="task binary: the label value that counts as the positive class."
    )
    labels: list[str | int | bool] | None = Field(
        default=None,
        description="binary: all allowed label values (default: the positive label and any one other); "
        "multiclass: the class list (required; its order is the order of pyfunc's probability columns).",
    )
    checks: DataChecks = DataChecks()
    delayed_labels: DelayedLabels | None = Field(
        default=None,
        description="Set when labels arrive later, keyed by an id column; default: every row has one.",
    )

    @field_validator("path")
    @classmethod
    def _relative(cls, v: str) -> str:
        if v.startswith("/") or ".." in Path(v).parts:
            raise ValueError("must be a relative path inside data/")
        return v.strip("/")
