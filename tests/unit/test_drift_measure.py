"""Statistical checks of measure_drift: false-alarm rate, batch-size gate, verdicts and the report (pure, fast)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evergreen.drift import DriftReport, ReferenceProfile, measure_drift
from evergreen.spec import DriftTrigger, Feature
from tests.unit.drift_synth import CAT_P, CATS, make_frame, reference_frame, reference_profile


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return reference_frame()


@pytest.fixture(scope="module")
def profile(reference: pd.DataFrame) -> ReferenceProfile:
    return reference_profile(reference)


def test_no_drift_false_alarm_rate_at_336_rows(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(2024)
    cfg = DriftTrigger()
    feature_alarms = dataset_alarms = 0
    psis = []
    trials = 200
    for _ in range(trials):
        rep = measure_drift(profile, make_frame(rng, 336), cfg)
        feature_alarms += rep.features["x"].drifted
        dataset_alarms += rep.dataset_drift
        x_psi = rep.features["x"].psi
        assert x_psi is not None
        psis.append(x_psi)
    assert feature_alarms / trials < 0.05
    assert dataset_alarms / trials < 0.05
    # the decile PSI sits near its (groups - 1) / n floor, far below 0.42 for 100 fine bins
    assert np.mean(psis) < 0.05


def test_small_batches_need_significance_not_just_a_big_psi(profile: ReferenceProfile) -> None:
    """At 50 rows the decile PSI of no-drift data often exceeds 0.2; the test keeps those quiet."""
    rng = np.random.default_rng(5)
    cfg = DriftTrigger()
    exceeds = alarms = 0
    trials = 200
    for _ in range(trials):
        f = measure_drift(profile, make_frame(rng, 50), cfg).features["x"]
        exceeds += f.exceeds_threshold
        alarms += f.drifted
    assert exceeds / trials > 0.2  # the raw threshold alone would alarm constantly
    assert alarms / trials < 0.05


@pytest.mark.parametrize(
    "statistic,threshold", [("psi", 0.2), ("ks", 0.1), ("js", 0.1), ("wasserstein", 0.1)]
)
def test_shift_is_detected(profile: ReferenceProfile, statistic: str, threshold: float) -> None:
    rng = np.random.default_rng(8)
    cfg = DriftTrigger(statistic=statistic, threshold=threshold)  # type: ignore[arg-type]
    hits = sum(
        measure_drift(profile, make_frame(rng, 336, shift=1.0), cfg).features["x"].drifted for _ in range(50)
    )
    assert hits >= 48


def test_dataset_drift_by_share(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(9)
    batch = make_frame(rng, 2000)
    batch["x"] += 1.0
    batch["y"] *= 3.0
    rep = measure_drift(profile, batch, DriftTrigger())
    assert set(rep.drifted_features) == {"x", "y"}
    assert rep.drift_share == pytest.approx(0.5)
    assert rep.dataset_drift
    assert rep.drift_score == max(f.psi for f in rep.features.values() if f.psi is not None)
    assert not measure_drift(profile, batch, DriftTrigger(share=0.75)).dataset_drift


# ---------------------------------------------------------------- rules


def test_critical_feature_alone_flags_the_dataset(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(10)
    batch = make_frame(rng, 1000)
    batch["x"] += 1.0
    plain = measure_drift(profile, batch, DriftTrigger())
    assert plain.drifted_features == ["x"] and not plain.dataset_drift
    crit = measure_drift(
        profile, batch, DriftTrigger(), features=[Feature(name="x", type="numeric", critical=True)]
    )
    assert crit.dataset_drift and crit.critical_drifted == ["x"]
    # a critical feature that did not drift changes nothing
    other = measure_drift(
        profile, batch, DriftTrigger(), features=[Feature(name="y", type="numeric", critical=True)]
    )
    assert not other.dataset_drift


def test_per_feature_threshold_overrides(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(12)
    batch = make_frame(rng, 2000)
    batch["x"] += 0.4  # decile PSI about 0.15: below the default 0.2
    base = measure_drift(profile, batch, DriftTrigger()).features["x"]
    assert 0.05 < base.psi < 0.2 and not base.drifted  # type: ignore[operator]
    low = [Feature(name="x", type="numeric", drift_threshold=0.05)]
    f = measure_drift(profile, batch, DriftTrigger(), features=low).features["x"]
    assert f.drifted and f.threshold == 0.05
    high = [Feature(name="x", type="numeric", drift_threshold=5.0)]
    batch["x"] += 2.0
    f = measure_drift(profile, batch, DriftTrigger(), features=high).features["x"]
    assert f.exceeds_threshold is False and not f.drifted


def test_min_rows_measures_but_never_flags(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(13)
    batch = make_frame(rng, 40, shift=5.0)
    batch["y"] *= 10
    rep = measure_drift(profile, batch, DriftTrigger(min_rows=50))
    assert rep.below_min_rows and not rep.dataset_drift and rep.drifted_features == []
    assert rep.features["x"].psi > 1.0 and rep.features["x"].exceeds_threshold  # type: ignore[operator]
    assert measure_drift(profile, batch, DriftTrigger(min_rows=30)).dataset_drift


def test_categorical_under_numeric_only_statistic_uses_psi(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(14)
    batch = make_frame(rng, 1000)
    batch["c"] = rng.choice(CATS, 1000, p=CAT_P[::-1])
    rep = measure_drift(profile, batch, DriftTrigger(statistic="ks", threshold=0.1))
    c = rep.features["c"]
    assert c.statistic == "psi" and c.threshold == 0.2 and c.drifted
    assert rep.features["x"].statistic == "ks" and rep.features["x"].threshold == 0.1


def test_chi2_statistic_is_a_significance_level(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(15)
    batch = make_frame(rng, 1000)
    batch["c"] = rng.choice(CATS, 1000, p=[0.3, 0.3, 0.2, 0.1, 0.1])
    c = measure_drift(profile, batch, DriftTrigger(statistic="chi2", threshold=0.01)).features["c"]
    assert c.value == c.chi2_pvalue and c.value is not None and c.value < 1e-6 and c.drifted
    same = measure_drift(
        profile, make_frame(rng, 1000), DriftTrigger(statistic="chi2", threshold=1e-6)
    ).features["c"]
    assert not same.drifted


# ---------------------------------------------------------------- robustness


def test_unseen_categories_counted_and_listed(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(16)
    batch = make_frame(rng, 500)
    batch.loc[:59, "c"] = "zz"
    batch.loc[60:64, "c"] = "new"
    f = measure_drift(profile, batch, DriftTrigger()).features["c"]
    assert f.unseen == 65
    assert f.unseen_categories == ["zz", "new"]
    assert f.drifted  # 13% of the batch in a category the model never saw


def test_out_of_range_counted_not_crashing(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(17)
    batch = make_frame(rng, 500)
    hi = profile.numeric["x"].max
    lo = profile.numeric["x"].min
    assert hi is not None and lo is not None
    batch.loc[:9, "x"] = hi + 100
    batch.loc[10:12, "x"] = lo - 1
    batch.loc[13, "x"] = np.inf
    f = measure_drift(profile, batch, DriftTrigger()).features["x"]
    assert f.out_of_range == 14
    assert f.n == 500


def test_nulls_missing_columns_and_junk(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(18)
    batch = make_frame(rng, 400).drop(columns=["y"])
    batch["x"] = batch["x"].astype(object)
    batch.loc[:19, "x"] = None
    batch.loc[20:29, "x"] = "oops"
    batch.loc[:4, "c"] = None
    rep = measure_drift(profile, batch, DriftTrigger())
    assert rep.features["x"].nulls == 30 and rep.features["x"].n == 370
    assert rep.features["x"].null_share == pytest.approx(30 / 400)
    assert rep.features["y"].missing and rep.features["y"].n == 0 and not rep.features["y"].drifted
    assert rep.features["c"].nulls == 5
    DriftReport.model_validate_json(rep.model_dump_json())


def test_score_drift(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(19)
    batch = make_frame(rng, 1000)
    same = measure_drift(profile, batch, DriftTrigger(), scores=rng.beta(2, 5, 1000)).score
    assert same is not None and not same.drifted and same.psi < 0.05  # type: ignore[operator]
    moved = measure_drift(profile, batch, DriftTrigger(), scores=rng.beta(5, 2, 1000)).score
    assert moved is not None and moved.drifted and moved.ks > 0.5  # type: ignore[operator]
    assert measure_drift(profile, batch, DriftTrigger()).score is None


def test_report_rows_and_json(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(20)
    rep = measure_drift(
        profile, make_frame(rng, 300, shift=1.0), DriftTrigger(), scores=rng.uniform(size=300)
    )
    rows = rep.to_rows()
    assert [r["name"] for r in rows] == ["x", "y", "k", "c", "prediction_score"]
    assert rows[0]["drifted"] is True and rows[0]["statistic"] == "psi"
    assert DriftReport.model_validate_json(rep.model_dump_json()) == rep
    assert rep.summary
