"""Drift explained: each feature's drift weighted by how much the champion uses the feature.

Importance is the champion's LightGBM split gain per feature (`booster_.feature_importance("gain")`),
summed over the columns a feature becomes (one-hot columns of a categorical), normalised to sum to 1.
Other estimators use their `feature_importances_` if they have one; without it there is no importance
and importance weighting falls back to the count share (the report says so).

Impact of feature j = importance_j x s_j, where s_j is the feature's effect size under the spec's
statistic (PSI, KS, JS distance or Wasserstein/std; for `chi2`, whose verdict value is a p-value, the
decile PSI). Features are ranked by impact, largest first.

Importance-weighted share = sum of importance_j over the drifted features j; with
`triggers.drift.weighting: importance` the dataset drifts when it reaches `triggers.drift.share`,
so drift in a feature the model ignores (importance 0) costs no retrain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel

TOP_IMPACT = 10
"""Features listed by impact in event payloads."""


class FeatureImpact(BaseModel):
    """One feature's drift effect size, the champion's importance of it, and their product."""

    name: str
    effect: float | None
    importance: float
    impact: float
    drifted: bool


def _raw_importance(model: Any) -> np.ndarray | None:
    booster = getattr(model, "booster_", None)
    if booster is not None:
        return np.asarray(booster.feature_importance("gain"), dtype=float)
    values = getattr(model, "feature_importances_", None)
    return None if values is None else np.asarray(values, dtype=float)


def feature_importance(pipeline: Any, features: Sequence[str]) -> dict[str, float]:
    """Normalised importance per input feature of a fitted Pipeline(prep=ColumnTransformer, model).

    {} when the estimator has no importance or nothing was learnt (all gains zero).
    """
    try:
        prep, model = pipeline.named_steps["prep"], pipeline.named_steps["model"]
        raw = _raw_importance(model)
        slices = prep.output_indices_
        transformers = prep.transformers_
    except (AttributeError, KeyError):
        return {}
    if raw is None:
        return {}
    out = dict.fromkeys(features, 0.0)
    for name, _, cols in transformers:
        part = raw[slices.get(name, slice(0, 0))]
        if len(cols) == 1:  # one input column, any number of output columns (one-hot)
            out[cols[0]] = out.get(cols[0], 0.0) + float(part.sum())
        elif len(part) == len(cols):  # one output column per input column (passthrough, imputer)
            for c, v in zip(cols, part, strict=True):
                out[c] = out.get(c, 0.0) + float(v)
    total = sum(out.values())
    if total <= 0:
        return {}
    return {k: round(v / total, 6) for k, v in out.items() if k in features}


def effect_size(feature: Any) -> float | None:
    """The effect size of a FeatureDrift under its statistic (chi2's value is a p-value: use its PSI)."""
    value = feature.psi if feature.statistic == "chi2" else feature.value
    return None if value is None else float(value)


def rank_impact(features: Mapping[str, Any], importance: Mapping[str, float]) -> list[FeatureImpact]:
    """Measured features (FeatureDrift, n > 0) by impact = importance x effect size, largest first."""
    rows = []
    for name, f in features.items():
        if f.n <= 0:
            continue
        effect = effect_size(f)
        imp = float(importance.get(name, 0.0))
        rows.append(
            FeatureImpact(
                name=name,
                effect=effect,
                importance=imp,
                impact=round(imp * (effect or 0.0), 6),
                drifted=f.drifted,
            )
        )
    return sorted(rows, key=lambda r: (-r.impact, -r.importance, r.name))


def weighted_share(drifted: Sequence[str], measured: Sequence[str], importance: Mapping[str, float]) -> float:
    """Sum of importance over the drifted features, as a share of the measured features' importance."""
    total = sum(importance.get(n, 0.0) for n in measured)
    if total <= 0:
        return 0.0
    return sum(importance.get(n, 0.0) for n in drifted) / total
