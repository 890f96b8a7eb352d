"""The dataset verdict of one batch: the share rule (by count or by importance), critical features, multivariate.

dataset_drift = (some feature drifted AND (share >= triggers.drift.share OR a critical feature drifted))
                OR (triggers.drift.multivariate.enabled AND the domain classifier is significant)

`share` is the count share (drifted / measured features) with `weighting: none`, and the
importance-weighted share (evergreen.drift.impact.weighted_share) with `weighting: importance`. A
critical feature triggers whatever its importance (the spec says it must never drift unnoticed).
The multivariate verdict is an OR: it adds the joint changes the per-feature rule cannot see and
never vetoes the per-feature rule. A batch below `min_rows` is measured, never flagged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from evergreen.drift.impact import weighted_share
from evergreen.drift.multivariate import MultivariateResult, domain_classifier
from evergreen.drift.report import FeatureDrift
from evergreen.spec import DriftTrigger

MULTIVARIATE_SEED = 0
"""Seed of the domain classifier's folds and model: the same batch always gets the same verdict."""


@dataclass
class Verdict:
    dataset_drift: bool
    share: float  # drifted / measured features
    weighted: float | None  # importance of the drifted features (None: no importance stored)
    drifted: list[str]
    critical: list[str]
    reasons: list[str] = field(default_factory=list)


def multivariate_check(
    cfg: DriftTrigger, reference: pd.DataFrame | None, batch: pd.DataFrame, features: Sequence[str]
) -> tuple[MultivariateResult | None, str | None]:
    """The domain classifier when enabled and a reference sample exists; else (None, why not or None)."""
    mv = cfg.multivariate
    if not mv.enabled:
        return None, None
    if reference is None:
        return (
            None,
            "multivariate: the champion has no reference sample (registered before it); retrain to add one",
        )
    result = domain_classifier(
        reference, batch, features, alpha=mv.alpha, min_auc=mv.min_auc, seed=MULTIVARIATE_SEED
    )
    if result is None:
        return None, "multivariate: too few rows to cross-validate"
    return result, None


def _share_reason(n_drift: int, n_meas: int, share: float, cfg: DriftTrigger, weighted: bool) -> str:
    what = "importance-weighted share" if weighted else "share"
    return f"{n_drift}/{n_meas} features drifted ({what} {share:.2f} >= {cfg.share})"


def dataset_verdict(
    features: Mapping[str, FeatureDrift],
    cfg: DriftTrigger,
    *,
    n_rows: int,
    importance: Mapping[str, float],
    multivariate: MultivariateResult | None,
) -> Verdict:
    """The verdict and its reasons (the module docstring has the rule)."""
    flaggable = n_rows >= cfg.min_rows
    measured = [f for f in features.values() if f.n > 0]
    drifted = [f.name for f in measured if f.drifted]
    critical = [f.name for f in measured if f.drifted and f.critical]
    count_share = len(drifted) / len(measured) if measured else 0.0
    use_importance = cfg.weighting == "importance" and bool(importance)
    weighted = weighted_share(drifted, [f.name for f in measured], importance) if importance else None
    share = weighted if use_importance and weighted is not None else count_share
    reasons: list[str] = []
    if not flaggable:
        reasons.append(f"batch of {n_rows} rows is below min_rows={cfg.min_rows}: measured, not flagged")
    if cfg.weighting == "importance" and not importance:
        reasons.append("weighting importance: the champion stores no feature importance; counting features")
    if measured and share >= cfg.share and drifted:
        reasons.append(_share_reason(len(drifted), len(measured), share, cfg, use_importance))
    if critical:
        reasons.append(f"critical features drifted: {critical}")
    per_feature = bool(drifted) and (share >= cfg.share or bool(critical))
    joint = multivariate is not None and multivariate.significant and flaggable
    if joint and multivariate is not None:
        top = ", ".join(name for name, _ in multivariate.top_features[:3])
        reasons.append(
            f"multivariate drift: domain classifier AUC {multivariate.auc:.3f} >= {multivariate.min_auc}, "
            f"p {multivariate.p_value:.2g} < {multivariate.alpha} (separated by {top})"
        )
    dataset_drift = per_feature or joint
    if not dataset_drift and flaggable:
        what = f" (importance-weighted share {share:.2f})" if use_importance else ""
        reasons.append(f"no dataset drift: {len(drifted)}/{len(measured)} features drifted{what}")
        if multivariate is not None:
            reasons.append(f"multivariate: AUC {multivariate.auc:.3f}, p {multivariate.p_value:.2g}")
    return Verdict(dataset_drift, count_share, weighted, drifted, critical, reasons)
