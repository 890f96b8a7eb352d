"""GX Core suites derived from a ModelSpec, and a compact summary of a validation run.

GX is data logic, not orchestration, so it lives in the pure core; the flows call it through tasks.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import pandas as pd
from pydantic import BaseModel

from evergreen.spec import ModelSpec

logger = logging.getLogger(__name__)

NUMERIC_TYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                 "float16", "float32", "float64", "Int8", "Int16", "Int32", "Int64", "Float32", "Float64"]  # fmt: skip
TIME_TYPES = ["datetime64[ns]", "datetime64[us]", "datetime64[ms]", "datetime64[s]"]


class Failure(BaseModel):
    """One failed expectation, with enough detail to fix the batch."""

    expectation: str
    column: str | None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    examples: list[Any] = []
    observed: Any = None
    error: str | None = None

    def describe(self) -> str:
        where = f"({self.column})" if self.column else ""
        if self.error:
            return f"{self.expectation}{where}: {self.error}"
        if self.unexpected_count:
            ex = f", e.g. {self.examples[:3]}" if self.examples else ""
            return f"{self.expectation}{where}: {self.unexpected_count} unexpected value(s){ex}"
        if self.observed is not None:
            return f"{self.expectation}{where}: observed {self.observed}"
        return f"{self.expectation}{where} failed"


class ValidationSummary(BaseModel):
    """What a GX run found; `failures` is empty when it passed."""

    suite: str
    success: bool
    evaluated: int
    failures: list[Failure]
    rows: int

    def message(self) -> str:
        if self.success:
            return f"GX suite {self.suite}: {self.evaluated} expectations passed on {self.rows} rows"
        lines = [f"GX suite {self.suite}: {len(self.failures)} of {self.evaluated} expectations failed:"]
        lines += [f"  - {f.describe()}" for f in self.failures]
        return "\n".join(lines)


def build_expectations(
    spec: ModelSpec, *, training: bool = False, present: set[str] | None = None
) -> list[Any]:
    """Expectations for a batch (or, with training=True, a whole training set) of this model.

    Column-level expectations are built only for `present` columns: the table-level column-set
    expectation already reports missing ones, and GX would otherwise raise on each.
    """
    import great_expectations as gx

    E = gx.expectations
    d = spec.data
    have = set(spec.columns) if present is None else present
    exps: list[Any] = [E.ExpectTableColumnsToMatchSet(column_set=spec.columns, exact_match=False)]
    if d.time_column in have:
        exps.append(E.ExpectColumnValuesToNotBeNull(column=d.time_column))
        exps.append(E.ExpectColumnValuesToBeInTypeList(column=d.time_column, type_list=TIME_TYPES))
    if d.target in have:
        exps.extend(_target_expectations(spec, training))
    for f in spec.features:
        if f.name not in have:
            continue
        if not f.nullable:
            exps.append(E.ExpectColumnValuesToNotBeNull(column=f.name))
        if f.type == "numeric":
            exps.append(E.ExpectColumnValuesToBeInTypeList(column=f.name, type_list=NUMERIC_TYPES))
            if f.min is not None or f.max is not None:
                exps.append(E.ExpectColumnValuesToBeBetween(column=f.name, min_value=f.min, max_value=f.max))
        elif f.categories is not None and not f.allow_unknown:
            exps.append(E.ExpectColumnValuesToBeInSet(column=f.name, value_set=list(f.categories)))
    if training:
        exps.append(E.ExpectTableRowCountToBeBetween(min_value=spec.training.min_train_rows))
    return exps


def _target_expectations(spec: ModelSpec, training: bool) -> list[Any]:
    """The target per task type: numeric for regression, in the label set for classification."""
    import great_expectations as gx

    E = gx.expectations
    d = spec.data
    exps: list[Any] = [E.ExpectColumnValuesToNotBeNull(column=d.target)]
    if spec.task == "regression":
        exps.append(E.ExpectColumnValuesToBeInTypeList(column=d.target, type_list=NUMERIC_TYPES))
    elif d.labels:
        exps.append(E.ExpectColumnValuesToBeInSet(column=d.target, value_set=list(d.labels)))
    if training and spec.task == "binary":
        exps.append(E.ExpectColumnDistinctValuesToContainSet(column=d.target, value_set=[d.positive_label]))
    elif training and spec.task == "multiclass":  # a classifier needs two classes to learn from
        exps.append(E.ExpectColumnUniqueValueCountToBeBetween(column=d.target, min_value=2))
    return exps


@lru_cache(maxsize=1)
def _context() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    ctx.data_sources.add_pandas("evergreen")
    return ctx


def _failure(res: Any, columns: set[str]) -> Failure:
    cfg = res.expectation_config
    result = res.result or {}
    exc = res.exception_info or {}
    err = exc.get("exception_message") if exc.get("raised_exception") else None
    if cfg.type == "expect_table_columns_to_match_set":
        missing = sorted(set(cfg.kwargs.get("column_set") or []) - columns)
        err = f"missing column(s) {missing}"
    return Failure(
        expectation=cfg.type,
        column=cfg.kwargs.get("column"),
        unexpected_count=result.get("unexpected_count"),
        unexpected_percent=result.get("unexpected_percent"),
        examples=[str(v) for v in (result.get("partial_unexpected_list") or [])[:5]],
        observed=result.get("observed_value") if result.get("unexpected_count") is None else None,
        error=err,
    )


def validate(frame: pd.DataFrame, spec: ModelSpec, *, training: bool = False) -> ValidationSummary:
    """Run the spec's GX suite on a frame."""
    import great_expectations as gx

    ctx = _context()
    kind = "training" if training else "batch"
    name = f"{spec.name}-{kind}"
    exps = build_expectations(spec, training=training, present=set(frame.columns))
    suite = gx.ExpectationSuite(name=name, expectations=exps)
    source = ctx.data_sources.get("evergreen")
    asset_name = f"{name}-frame"
    try:
        asset = source.get_asset(asset_name)
    except LookupError:
        asset = source.add_dataframe_asset(asset_name)
    try:
        definition = asset.get_batch_definition("whole")
    except KeyError:
        definition = asset.add_batch_definition_whole_dataframe("whole")
    batch = definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(suite)
    failures = [_failure(r, set(frame.columns)) for r in result.results if not r.success]
    return ValidationSummary(
        suite=name,
        success=bool(result.success),
        evaluated=len(result.results),
        failures=failures,
        rows=len(frame),
    )


def coerce_batch(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """Parse the time column to datetimes so CSV and parquet batches validate alike.

    Unparseable times become NaT and fail the not-null expectation, naming the column.
    """
    out = frame.copy()
    tcol = spec.data.time_column
    if tcol in out.columns and not pd.api.types.is_datetime64_any_dtype(out[tcol]):
        out[tcol] = pd.to_datetime(out[tcol], errors="coerce")
    return out
