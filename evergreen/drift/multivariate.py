"""Multivariate drift: a domain classifier tells the reference sample from the batch.

Per-feature statistics compare marginals, so a change in how features move *together* (a correlation
that flips while every marginal stays put) is invisible to them. A classifier sees it: label the
reference-sample rows 0 and the batch rows 1, score every row out of fold (stratified K-fold, fixed
seed) and measure the ROC AUC of those out-of-fold scores. With no drift nothing separates the two
sets and the AUC is about 0.5.

Significance, per fold: conditional on a fold's model (which never saw the fold's rows), the fold's
test rows are independent draws, so under H0 (one distribution) their labels are exchangeable with
their scores and `scipy.stats.mannwhitneyu(batch, reference, alternative="greater")` on that fold's
scores is an exact-in-the-limit test of its AUC (AUC = U / (n0 n1)). The K folds share training rows,
so their p-values are dependent; Bonferroni (p = min(1, K * min_k p_k)) is valid under any
dependence. The Mann-Whitney p-value of the *pooled* out-of-fold scores is not: the fold models
differ, the pooled AUC's spread under H0 is about 1.3x what Mann-Whitney assumes, and it flagged 8%
of independent same-distribution batches at alpha = 0.05, against 4.5% for the per-fold Bonferroni
p-value (`python benchmarks/drift_multivariate.py`, benchmarks/results/drift_multivariate.json).
The pooled out-of-fold AUC is still the reported effect size (and `min_auc` its threshold).
tests/unit/test_drift_multivariate.py checks the false-positive rate against a binomial bound.

The reference sample is a bounded, time-stratified, seeded sample of the champion's training rows,
stored with each version (`reference_sample.parquet`), so the monitor never reloads the training data.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

# scipy and sklearn are imported in the functions that use them: the monitor flow imports this module
# before its run starts, and most runs never fit the domain classifier.

REFERENCE_SAMPLE = "reference_sample.parquet"
"""The artifact name of the reference sample, beside reference_profile.json."""
TIME_STRATA = 10
"""The reference sample keeps each tenth of the training period's rows in proportion."""
FOLDS = 5
TOP_FEATURES = 5
_CLASSIFIER: dict[str, Any] = {
    "n_estimators": 50,
    "learning_rate": 0.1,
    "num_leaves": 7,
    "min_child_samples": 10,
    "subsample": 1.0,
    "n_jobs": 1,
    "verbose": -1,
}


class MultivariateResult(BaseModel):
    """The domain classifier's verdict on one batch (the `multivariate` field of a DriftReport)."""

    auc: float = Field(description="Out-of-fold ROC AUC of reference (0) vs batch (1); 0.5 = inseparable.")
    p_value: float = Field(description="min(1, folds x smallest per-fold one-sided Mann-Whitney p-value).")
    alpha: float
    min_auc: float
    significant: bool = Field(description="p_value < alpha and auc >= min_auc.")
    n_reference: int
    n_batch: int
    folds: int
    top_features: list[tuple[str, float]] = Field(
        default_factory=list, description="Features that separate the two sets most: (name, share of gain)."
    )


def reference_sample(
    frame: pd.DataFrame, features: Sequence[str], time_column: str | None, rows: int, seed: int
) -> pd.DataFrame:
    """At most `rows` rows of `features`, stratified over TIME_STRATA equal-count periods of `time_column`.

    Stratifying keeps a long training window's early and late periods in proportion, so a sample of a
    decayed or rolling window still looks like the whole window; the seed makes it reproducible.
    """
    cols = list(features)
    if len(frame) <= rows:
        return frame[cols].reset_index(drop=True)
    strata = None
    if time_column and time_column in frame.columns:
        t = frame[time_column]
        order = np.arange(1, len(t) + 1) if t.is_monotonic_increasing else t.rank(method="first").to_numpy()
        strata = np.minimum((order - 1) * TIME_STRATA // len(frame), TIME_STRATA - 1).astype(int)
    # The split of positions only: the same rows as splitting the frame itself (the split depends on
    # the row count, strata and seed alone), without copying the ~all rows left out of the sample.
    from sklearn.model_selection import train_test_split

    kept, _ = train_test_split(np.arange(len(frame)), train_size=rows, stratify=strata, random_state=seed)
    return frame[cols].iloc[kept].sort_index().reset_index(drop=True)


def sample_bytes(
    frame: pd.DataFrame, features: Sequence[str], time_column: str | None, rows: int, seed: int
) -> bytes:
    """The reference sample as the parquet bytes a version stores (REFERENCE_SAMPLE)."""
    return reference_sample(frame, features, time_column, rows, seed).to_parquet(index=False)


def read_sample(data: bytes) -> pd.DataFrame:
    """A stored reference sample back as a frame."""
    return pd.read_parquet(io.BytesIO(data))


def sample_tags() -> dict[str, str]:
    """The version tag naming the reference-sample artifact (as `reference_profile` names the profile)."""
    return {"reference_sample": REFERENCE_SAMPLE}


def _design(reference: pd.DataFrame, batch: pd.DataFrame, features: Sequence[str]) -> pd.DataFrame:
    """One frame of both sets: numeric columns as float, the rest as one shared pandas category."""
    both = pd.concat([reference[list(features)], batch[list(features)]], ignore_index=True)
    for c in features:
        col = both[c]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            both[c] = col.astype(float)
        else:
            both[c] = col.astype(str).where(col.notna()).astype("category")
    return both


def domain_classifier(
    reference: pd.DataFrame,
    batch: pd.DataFrame,
    features: Sequence[str],
    *,
    alpha: float,
    min_auc: float = 0.5,
    seed: int = 0,
    folds: int = FOLDS,
) -> MultivariateResult | None:
    """Reference (0) vs batch (1): out-of-fold AUC, its Mann-Whitney p-value, the separating features.

    None when a set has fewer rows than folds (nothing to cross-validate). `features` missing from
    the batch are left out (the per-feature report already flags a missing column).
    """
    from lightgbm import LGBMClassifier
    from scipy.stats import mannwhitneyu
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_validate

    cols = [f for f in features if f in reference.columns and f in batch.columns]
    n0, n1 = len(reference), len(batch)
    if not cols or min(n0, n1) < folds:
        return None
    x = _design(reference, batch, cols)
    y = np.r_[np.zeros(n0, dtype=int), np.ones(n1, dtype=int)]
    model = LGBMClassifier(random_state=seed, **_CLASSIFIER)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    fitted = cross_validate(model, x, y, cv=cv, return_estimator=True, return_indices=True)
    scores = np.empty(n0 + n1)
    gain = np.zeros(len(cols))
    fold_p = []
    for est, test in zip(fitted["estimator"], fitted["indices"]["test"], strict=True):
        s = est.predict_proba(x.iloc[test])[:, 1]
        scores[test] = s
        yt = y[test]
        fold_p.append(float(mannwhitneyu(s[yt == 1], s[yt == 0], alternative="greater").pvalue))
        gain += est.booster_.feature_importance("gain")
    auc = float(roc_auc_score(y, scores))
    p = min(1.0, folds * min(fold_p))  # Bonferroni over the folds: valid however they depend
    total = gain.sum()
    ranked = sorted(zip(cols, gain / total if total > 0 else gain, strict=True), key=lambda kv: -kv[1])
    return MultivariateResult(
        auc=auc,
        p_value=p,
        alpha=alpha,
        min_auc=min_auc,
        significant=bool(p < alpha and auc >= min_auc),
        n_reference=n0,
        n_batch=n1,
        folds=folds,
        top_features=[(name, round(float(g), 4)) for name, g in ranked[:TOP_FEATURES] if g > 0],
    )
