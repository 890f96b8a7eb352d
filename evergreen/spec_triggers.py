"""The trigger part of a model spec: drift, performance and volume rules, cooldown, schedules."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from evergreen.spec_base import _check_duration, _Strict


class MultivariateDrift(_Strict):
    """A domain classifier (reference sample vs batch): finds joint changes per-feature tests cannot see.

    docs/drift.md ("Multivariate drift"): out-of-fold ROC AUC of reference (0) vs batch (1), per-fold
    Mann-Whitney p-values combined by Bonferroni. Significant: p < alpha and AUC >= min_auc.
    """

    enabled: bool = False
    alpha: float = Field(default=0.01, gt=0, lt=1, description="Significance of the AUC above 0.5.")
    min_auc: float = Field(
        default=0.55,
        ge=0.5,
        lt=1,
        description="Effect size: the out-of-fold AUC must also reach this (large batches make tiny AUCs significant).",
    )
    reference_rows: int = Field(
        default=2000,
        ge=100,
        le=100_000,
        description="Reference sample stored with each version: at most this many training rows, time-stratified.",
    )


class DriftTrigger(_Strict):
    enabled: bool = True
    priority: int = Field(
        default=1, ge=1, le=5, description="Retrain priority, 1 (most urgent) .. 5: work queue retrain-p<N>."
    )
    statistic: Literal["psi", "ks", "js", "chi2", "wasserstein"] = "psi"
    threshold: float = Field(default=0.2, gt=0)
    share: float = Field(
        default=0.5, gt=0, le=1, description="Dataset drifts when this share of features drift."
    )
    bins: int = Field(
        default=100, ge=10, le=1000, description="Quantile bins per numeric feature in the profile."
    )
    min_rows: int = Field(default=50, gt=0, description="Smaller batches are measured but never flagged.")
    alpha: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="A feature drifts only if a same-distribution test also rejects at alpha.",
    )
    weighting: Literal["none", "importance"] = Field(
        default="none",
        description="importance: the drifted share is weighted by the champion's feature importance.",
    )
    multivariate: MultivariateDrift = MultivariateDrift()


class PerformanceTrigger(_Strict):
    enabled: bool = True
    priority: int = Field(
        default=1, ge=1, le=5, description="Retrain priority, 1 (most urgent) .. 5: work queue retrain-p<N>."
    )
    floor: float | None = Field(default=None, description="Default: the gate floor.")
    consecutive: int = Field(default=2, ge=1, description="K consecutive batches below the floor.")
    max_drop: float | None = Field(
        default=None, ge=0, description="Also degraded when this far below the champion."
    )
    alpha: float = Field(default=0.05, gt=0, lt=0.5, description="Significance for 'below' (one-sided).")


class EstimatedPerformanceTrigger(_Strict):
    """CBPE: the champion's calibrated scores estimate the metric on an unlabelled batch (docs/estimate.md).

    Binary models (accuracy or roc_auc) and multiclass models (accuracy); not regression.
    """

    enabled: bool = False
    priority: int = Field(
        default=1, ge=1, le=5, description="Retrain priority, 1 (most urgent) .. 5: work queue retrain-p<N>."
    )
    metric: Literal["accuracy", "roc_auc"] = Field(
        default="accuracy", description="The estimated metric (roc_auc: binary models only)."
    )
    floor: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Degraded when the estimate's upper (1 - alpha) bound is below this floor.",
    )
    max_drop: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Also degraded when the upper bound is more than this below the champion's hold-out metric.",
    )
    consecutive: int = Field(default=1, ge=1, description="K consecutive degraded estimates.")
    alpha: float = Field(
        default=0.05, gt=0, lt=0.5, description="One-sided significance of the estimate's bound."
    )

    @model_validator(mode="after")
    def _has_a_rule(self) -> EstimatedPerformanceTrigger:
        if self.enabled and self.floor is None and self.max_drop is None:
            raise ValueError("needs `floor` or `max_drop` when enabled")
        return self


def check_estimated(task: str, trig: EstimatedPerformanceTrigger) -> None:
    """The estimate exists for classifiers only; ROC AUC for binary ones (raises ValueError naming the key)."""
    if not trig.enabled:
        return
    if task == "regression":
        raise ValueError(
            "triggers.estimated: a label-free estimate needs class probabilities (not regression)"
        )
    if task != "binary" and trig.metric == "roc_auc":
        raise ValueError(
            f"triggers.estimated.metric roc_auc needs task 'binary' (task is {task!r}); use accuracy"
        )


class VolumeTrigger(_Strict):
    enabled: bool = True
    priority: int = Field(
        default=1, ge=1, le=5, description="Retrain priority, 1 (most urgent) .. 5: work queue retrain-p<N>."
    )
    min_new_share: float = Field(
        default=0.25, gt=0, description="New rows since the champion's data, as a share."
    )


class Triggers(_Strict):
    drift: DriftTrigger = DriftTrigger()
    performance: PerformanceTrigger = PerformanceTrigger()
    volume: VolumeTrigger = VolumeTrigger()
    estimated: EstimatedPerformanceTrigger = EstimatedPerformanceTrigger()
    cooldown: str | None = Field(default="6h", description="No retrain this soon after the last promotion.")

    _dur = field_validator("cooldown")(classmethod(lambda cls, v: _check_duration(v)))


class Schedule(_Strict):
    cron: str
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        if len(v.split()) != 5:
            raise ValueError(f"{v!r} is not a 5-field cron expression")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {v!r}") from exc
        return v


class RetrainSchedule(Schedule):
    """The retrain cron: routine, so by default the least urgent queue (triggers default to 1)."""

    priority: int = Field(
        default=5, ge=1, le=5, description="Retrain priority, 1 (most urgent) .. 5: work queue retrain-p<N>."
    )


class Monitor(_Strict):
    """When the monitor runs. It always runs after each ingest (an automation on `data.ingested`)."""

    schedule: Schedule | None = Field(
        default=None, description="An extra cron run of the monitor (e.g. daily); null: after ingests only."
    )
