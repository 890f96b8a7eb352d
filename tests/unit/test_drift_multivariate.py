"""The multivariate (domain classifier) drift detector: what per-feature statistics cannot see.

The issue's case: two features whose correlation flips (x2 = x1 + noise in the reference, x2 = -x1 +
noise in the batches, x1 symmetric) while both marginals stay the same. Every per-feature statistic
misses it; the domain classifier flags it. And on independent re-samples of the reference
distribution it fires no more often than its significance level allows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from evergreen.drift import build_profile, measure_drift
from evergreen.drift.multivariate import TIME_STRATA, domain_classifier, reference_sample
from evergreen.spec import DriftTrigger

FEATURES = ["x1", "x2", "x3"]
BATCH_ROWS = 300
REFERENCE_ROWS = 1000
THRESHOLDS = {"psi": 0.2, "ks": 0.1, "js": 0.1, "chi2": 0.01, "wasserstein": 0.1}


def draw(rng: np.random.Generator, n: int, *, flip: bool = False) -> pd.DataFrame:
    x1 = rng.normal(0.0, 1.0, n)
    x2 = (-x1 if flip else x1) + rng.normal(0.0, 0.5, n)  # the same N(0, 1.25) marginal either way
    return pd.DataFrame({"x1": x1, "x2": x2, "x3": rng.normal(0.0, 1.0, n)})


@pytest.fixture(scope="module")
def training() -> pd.DataFrame:
    frame = draw(np.random.default_rng(11), 10_000)
    frame["ts"] = pd.date_range("2024-01-01", periods=len(frame), freq="h")
    return frame


@pytest.fixture(scope="module")
def reference(training: pd.DataFrame) -> pd.DataFrame:
    return reference_sample(training, FEATURES, "ts", REFERENCE_ROWS, seed=0)


@pytest.fixture(scope="module")
def flipped() -> list[pd.DataFrame]:
    rng = np.random.default_rng(12)
    return [draw(rng, BATCH_ROWS, flip=True) for _ in range(20)]


def test_reference_sample_is_bounded_seeded_and_spread_over_time(training: pd.DataFrame) -> None:
    a = reference_sample(training, [*FEATURES, "ts"], "ts", REFERENCE_ROWS, seed=0)
    assert len(a) == REFERENCE_ROWS and list(a.columns) == [*FEATURES, "ts"]
    assert a.equals(reference_sample(training, [*FEATURES, "ts"], "ts", REFERENCE_ROWS, seed=0))
    assert not a.equals(reference_sample(training, [*FEATURES, "ts"], "ts", REFERENCE_ROWS, seed=1))
    position = (a["ts"] - training["ts"].iloc[0]) / pd.Timedelta("1h")  # row number in the training frame
    periods = (position * TIME_STRATA // len(training)).value_counts()
    assert len(periods) == TIME_STRATA and periods.min() == periods.max()  # every tenth in proportion
    small = training.head(50)
    assert len(reference_sample(small, FEATURES, "ts", REFERENCE_ROWS, seed=0)) == 50


def test_correlation_flip_is_missed_by_every_per_feature_statistic(
    training: pd.DataFrame, flipped: list[pd.DataFrame]
) -> None:
    profile = build_profile(training, FEATURES, [], bins=50)
    for stat, threshold in THRESHOLDS.items():
        cfg = DriftTrigger(statistic=stat, threshold=threshold, share=0.5)
        verdicts = [measure_drift(profile, b, cfg).dataset_drift for b in flipped]
        assert not any(verdicts), stat


def test_correlation_flip_is_flagged_by_the_domain_classifier(
    training: pd.DataFrame, reference: pd.DataFrame, flipped: list[pd.DataFrame]
) -> None:
    profile = build_profile(training, FEATURES, [], bins=50)
    cfg = DriftTrigger(multivariate={"enabled": True, "alpha": 0.01})
    reports = [measure_drift(profile, b, cfg, reference=reference) for b in flipped]
    assert sum(r.dataset_drift for r in reports) >= 19
    r = reports[0]
    assert r.drifted_features == [] and r.multivariate is not None and r.multivariate.significant
    assert r.multivariate.auc > 0.8 and r.multivariate.n_reference == REFERENCE_ROWS
    assert {name for name, _ in r.multivariate.top_features[:2]} == {"x1", "x2"}
    assert any(reason.startswith("multivariate drift: domain classifier AUC") for reason in r.reasons)
    # disabled: the same batch is not drifted, and no classifier runs
    off = measure_drift(profile, flipped[0], DriftTrigger(), reference=reference)
    assert off.dataset_drift is False and off.multivariate is None


def test_independent_resamples_are_flagged_at_most_at_the_significance_level(reference: pd.DataFrame) -> None:
    """H0: batches from the reference distribution. With a calibrated p-value the false positives
    over n batches are Binomial(n, alpha); exceeding its 99.9% quantile would be a 1-in-1000 event."""
    alpha, n = 0.05, 40
    rng = np.random.default_rng(13)
    results = [
        domain_classifier(reference, draw(rng, BATCH_ROWS), FEATURES, alpha=alpha, seed=i) for i in range(n)
    ]
    assert all(r is not None for r in results)
    false_positives = sum(r.significant for r in results if r is not None)
    assert false_positives <= binom.ppf(0.999, n, alpha), false_positives
    aucs = np.array([r.auc for r in results if r is not None])
    assert abs(aucs.mean() - 0.5) < 0.02  # nothing separates the two sets


def test_min_auc_and_missing_inputs() -> None:
    rng = np.random.default_rng(14)
    ref, batch = draw(rng, 400), draw(rng, 200, flip=True)
    strict = domain_classifier(ref, batch, FEATURES, alpha=0.01, min_auc=0.99)
    assert strict is not None and strict.p_value < 0.01 and not strict.significant  # effect too small
    assert domain_classifier(ref, batch.head(3), FEATURES, alpha=0.01) is None  # fewer rows than folds
    assert domain_classifier(ref, batch.drop(columns=FEATURES), FEATURES, alpha=0.01) is None
    cats = (
        ref.assign(c=np.where(ref["x1"] > 0, "a", "b")),
        batch.assign(c=np.where(batch["x1"] > 0, "b", "a")),
    )
    mixed = domain_classifier(*cats, [*FEATURES, "c"], alpha=0.01)  # a categorical column is modelled too
    assert mixed is not None and mixed.significant


def test_no_reference_sample_says_so(training: pd.DataFrame, flipped: list[pd.DataFrame]) -> None:
    profile = build_profile(training, FEATURES, [], bins=50)
    r = measure_drift(profile, flipped[0], DriftTrigger(multivariate={"enabled": True}))
    assert r.multivariate is None and r.dataset_drift is False
    assert any("no reference sample" in reason for reason in r.reasons)
