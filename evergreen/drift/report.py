"""The drift report of one batch, and the per-feature verdict (effect size AND significance)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from evergreen.drift.impact import FeatureImpact
from evergreen.drift.multivariate import MultivariateResult
from evergreen.spec import DriftTrigger, Feature

DEFAULT_ALPHA = 0.01
"""Significance of the batch-size gate: a feature drifts only when p < alpha as well."""
DEFAULT_PSI_THRESHOLD = 0.2
"""PSI threshold used where a statistic does not apply to a feature (categorical under KS/Wasserstein)."""


Statistic = Literal["psi", "ks", "js", "chi2", "wasserstein"]
_NUMERIC_ONLY = {"ks", "wasserstein"}


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
    weighting: Literal["none", "importance"] = "none"
    weighted_share: float | None = Field(
        default=None, description="Champion importance of the drifted features (None: none stored)."
    )
    impact: list[FeatureImpact] = Field(
        default_factory=list, description="Measured features by importance x effect size, largest first."
    )
    multivariate: MultivariateResult | None = Field(
        default=None, description="The domain classifier (triggers.drift.multivariate.enabled)."
    )

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
        impact = {i.name: i for i in self.impact}
        rows = [{c: getattr(f, c) for c in cols} for f in items]
        for row in rows:
            ranked = impact.get(row["name"])
            row["importance"] = ranked.importance if ranked else None
            row["impact"] = ranked.impact if ranked else None
        return rows

    @property
    def summary(self) -> str:
        return "; ".join(self.reasons)


def resolve_statistic(kind: str, cfg: DriftTrigger, feature: Feature | None) -> tuple[Statistic, float]:
    """The statistic and threshold for one feature; categorical features cannot use KS/Wasserstein."""
    stat: Statistic = cfg.statistic
    override = feature.drift_threshold if feature is not None else None
    if kind == "categorical" and stat in _NUMERIC_ONLY:
        return "psi", override if override is not None else DEFAULT_PSI_THRESHOLD
    return stat, override if override is not None else cfg.threshold


def feature_verdict(
    stats: dict[str, Any],
    stat: Statistic,
    threshold: float,
    alpha: float,
    flaggable: bool,
) -> dict[str, Any]:
    """FeatureDrift's verdict fields: drifted when the statistic exceeds its threshold AND p < alpha.

    chi2's statistic is itself a p-value (drifted below the threshold). `flaggable` is False for a
    batch (or column) below min_rows: measured, never flagged.
    """
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
