"""Statistical checks of the reference profile and drift statistics (pure, fast)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp, wasserstein_distance

from evergreen.drift import (
    DriftReport,
    ReferenceProfile,
    bin_counts,
    binning,
    build_profile,
    measure_drift,
    merge_groups,
    psi,
)
from evergreen.spec import DriftTrigger, Feature

CATS = ["a", "b", "c", "d", "e"]
CAT_P = [0.4, 0.3, 0.15, 0.1, 0.05]


def _frame(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1.0, n),
            "y": rng.lognormal(0.0, 1.0, n),
            "k": rng.integers(0, 5, n),
            "c": rng.choice(CATS, n, p=CAT_P),
        }
    )


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return _frame(np.random.default_rng(42), 20_000)


@pytest.fixture(scope="module")
def profile(reference: pd.DataFrame) -> ReferenceProfile:
    scores = np.random.default_rng(7).beta(2, 5, len(reference))
    return build_profile(
        reference,
        ["x", "y", "k"],
        ["c"],
        labels=(reference["x"] > 0).to_numpy(),
        scores=scores,
        metrics={"roc_auc": 0.81},
    )


# ---------------------------------------------------------------- profile


def test_profile_bins_cover_the_reference(profile: ReferenceProfile, reference: pd.DataFrame) -> None:
    x = profile.numeric["x"]
    assert len(x.counts) == 100 and len(x.edges) == 101
    assert sum(x.counts) == x.count == len(reference)
    assert min(x.counts) > 0
    assert x.edges[0] == reference["x"].min() and x.edges[-1] == reference["x"].max()
    assert np.all(np.diff(x.edges) >= 0)
    assert x.std == pytest.approx(reference["x"].std())
    # discrete data: one bin per value, no empty bins
    k = profile.numeric["k"]
    assert len(k.counts) == 5
    assert k.counts == reference["k"].value_counts().sort_index().tolist()
    assert profile.categorical["c"].frequencies == {
        str(key): int(v) for key, v in reference["c"].value_counts().items()
    }
    assert profile.label_balance == pytest.approx((reference["x"] > 0).mean())
    assert profile.score_histogram is not None and sum(profile.score_histogram) == len(reference)
    assert len(profile.score_histogram) == 20


def test_profile_json_round_trip(profile: ReferenceProfile, reference: pd.DataFrame) -> None:
    again = ReferenceProfile.model_validate_json(profile.model_dump_json())
    assert again == profile
    batch = _frame(np.random.default_rng(1), 500, shift=0.5)
    cfg = DriftTrigger()
    assert measure_drift(again, batch, cfg) == measure_drift(profile, batch, cfg)


def test_categorical_keys_are_strings() -> None:
    frame = pd.DataFrame({"n": [1, 2, 2, 3, None], "s": ["a", "b", "b", "a", "a"]})
    prof = build_profile(frame, [], ["n", "s"])
    assert prof.categorical["n"].frequencies == {"1": 1, "2": 2, "3": 1}
    assert prof.categorical["n"].nulls == 1
    assert ReferenceProfile.model_validate_json(prof.model_dump_json()) == prof
    # an int column arriving as int (no nulls) or as float (with nulls) matches the same keys
    batch = pd.DataFrame({"n": np.array([1, 2, 3, 3] * 20), "s": ["a", "b"] * 40})
    assert measure_drift(prof, batch, DriftTrigger()).features["n"].unseen == 0
    batch["n"] = batch["n"].astype(float)
    assert measure_drift(prof, batch, DriftTrigger()).features["n"].unseen == 0


def test_profile_rejects_missing_columns(reference: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="nope"):
        build_profile(reference, ["nope"], [])


# ---------------------------------------------------------------- binning


@pytest.mark.parametrize("kind", ["normal", "lognormal", "discrete", "on_cuts", "outliers"])
def test_fast_binning_equals_searchsorted(kind: str) -> None:
    rng = np.random.default_rng(3)
    ref = rng.normal(size=5000) if kind != "lognormal" else rng.lognormal(size=5000)
    if kind == "discrete":
        ref = rng.integers(0, 30, 5000).astype(float)
    edges = np.asarray(build_profile(pd.DataFrame({"v": ref}), ["v"], []).numeric["v"].edges)
    n = 200_000  # above the fast-path size
    x = {
        "normal": rng.normal(0.3, 1.2, n),
        "lognormal": rng.lognormal(0.2, 1.0, n),
        "discrete": rng.integers(-3, 35, n).astype(float),
        "on_cuts": rng.choice(edges, n),
        "outliers": np.concatenate([rng.normal(size=n - 4), [np.inf, -np.inf, 1e300, -1e300]]),
    }[kind]
    expected = np.bincount(np.searchsorted(edges[1:-1], x, side="left"), minlength=len(edges) - 1)
    np.testing.assert_array_equal(bin_counts(edges, x), expected)


def test_fast_path_reports_equal_the_plain_path(
    profile: ReferenceProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Out-of-range tallies, min/max and every statistic agree between the two binning paths."""
    rng = np.random.default_rng(21)
    batch = _frame(rng, 120_000, shift=0.3)
    hi, lo = profile.numeric["x"].max, profile.numeric["x"].min
    assert hi is not None and lo is not None
    batch.loc[:99, "x"] = hi + rng.uniform(0.1, 3.0, 100)
    batch.loc[100:149, "x"] = lo - rng.uniform(0.1, 3.0, 50)
    batch.loc[150:159, "x"] = np.nan
    fast = measure_drift(profile, batch, DriftTrigger())
    monkeypatch.setattr(binning, "_FAST_MIN_ROWS", 10**12)
    plain = measure_drift(profile, batch, DriftTrigger())
    assert fast == plain
    expected = int(((batch["x"] < lo) | (batch["x"] > hi)).sum())
    assert expected >= 150
    assert fast.features["x"].out_of_range == expected and fast.features["x"].nulls == 10


def test_merge_groups_makes_deciles() -> None:
    ids = merge_groups(np.full(100, 7))
    assert ids.max() == 9
    np.testing.assert_array_equal(np.bincount(ids), np.full(10, 10))
    # A heavy atom swallows several deciles; no group is empty of reference mass.
    counts = np.array([0, 5, 60, 5, 5, 5, 5, 5, 5, 5])
    ids = merge_groups(counts)
    assert np.all(np.bincount(ids, weights=counts) > 0)
    assert ids[0] == ids[1]


# ---------------------------------------------------------------- statistics vs scipy


@pytest.mark.parametrize("bins", [20, 100])
@pytest.mark.parametrize("shift", [0.0, 0.25, 1.0, 4.0])
def test_binned_ks_within_one_bin_of_scipy(bins: int, shift: float) -> None:
    rng = np.random.default_rng(int(shift * 100) + bins)
    ref = pd.DataFrame({"x": rng.normal(size=10_000), "y": rng.lognormal(size=10_000)})
    prof = build_profile(ref, ["x", "y"], [], bins=bins)
    batch = pd.DataFrame({"x": rng.normal(shift, 1.3, 3000), "y": rng.lognormal(shift, 0.8, 3000)})
    rep = measure_drift(prof, batch, DriftTrigger(bins=bins))
    for col in ("x", "y"):
        exact = ks_2samp(ref[col], batch[col]).statistic
        binned = rep.features[col].ks
        assert binned is not None
        # exact at the bin edges, so never above the raw KS, and at most one reference bin below it
        assert binned <= exact + 1e-12
        assert exact - binned <= 1 / bins + 1e-9


@pytest.mark.parametrize("shift", [0.0, 0.5, 2.0])
def test_binned_wasserstein_close_to_scipy(shift: float) -> None:
    rng = np.random.default_rng(11)
    ref = pd.DataFrame({"x": rng.normal(size=20_000)})
    prof = build_profile(ref, ["x"], [])
    batch = pd.DataFrame({"x": rng.normal(shift, 1.0, 5000)})
    got = measure_drift(prof, batch, DriftTrigger()).features["x"].wasserstein
    exact = wasserstein_distance(ref["x"], batch["x"]) / ref["x"].std()
    assert got == pytest.approx(exact, rel=0.08, abs=0.01)


def test_psi_matches_definition() -> None:
    r = np.array([50, 30, 20])
    b = np.array([20, 30, 50])
    expected = sum((bb - rr) * np.log(bb / rr) for rr, bb in zip(r / 100, b / 100, strict=True))
    assert psi(r, b) == pytest.approx(expected)
    assert psi(r, r) == 0.0


# ---------------------------------------------------------------- batch-size awareness


def test_no_drift_false_alarm_rate_at_336_rows(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(2024)
    cfg = DriftTrigger()
    feature_alarms = dataset_alarms = 0
    psis = []
    trials = 200
    for _ in range(trials):
        rep = measure_drift(profile, _frame(rng, 336), cfg)
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
        f = measure_drift(profile, _frame(rng, 50), cfg).features["x"]
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
        measure_drift(profile, _frame(rng, 336, shift=1.0), cfg).features["x"].drifted for _ in range(50)
    )
    assert hits >= 48


def test_dataset_drift_by_share(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(9)
    batch = _frame(rng, 2000)
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
    batch = _frame(rng, 1000)
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
    batch = _frame(rng, 2000)
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
    batch = _frame(rng, 40, shift=5.0)
    batch["y"] *= 10
    rep = measure_drift(profile, batch, DriftTrigger(min_rows=50))
    assert rep.below_min_rows and not rep.dataset_drift and rep.drifted_features == []
    assert rep.features["x"].psi > 1.0 and rep.features["x"].exceeds_threshold  # type: ignore[operator]
    assert measure_drift(profile, batch, DriftTrigger(min_rows=30)).dataset_drift


def test_categorical_under_numeric_only_statistic_uses_psi(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(14)
    batch = _frame(rng, 1000)
    batch["c"] = rng.choice(CATS, 1000, p=CAT_P[::-1])
    rep = measure_drift(profile, batch, DriftTrigger(statistic="ks", threshold=0.1))
    c = rep.features["c"]
    assert c.statistic == "psi" and c.threshold == 0.2 and c.drifted
    assert rep.features["x"].statistic == "ks" and rep.features["x"].threshold == 0.1


def test_chi2_statistic_is_a_significance_level(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(15)
    batch = _frame(rng, 1000)
    batch["c"] = rng.choice(CATS, 1000, p=[0.3, 0.3, 0.2, 0.1, 0.1])
    c = measure_drift(profile, batch, DriftTrigger(statistic="chi2", threshold=0.01)).features["c"]
    assert c.value == c.chi2_pvalue and c.value is not None and c.value < 1e-6 and c.drifted
    same = measure_drift(profile, _frame(rng, 1000), DriftTrigger(statistic="chi2", threshold=1e-6)).features[
        "c"
    ]
    assert not same.drifted


# ---------------------------------------------------------------- robustness


def test_unseen_categories_counted_and_listed(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(16)
    batch = _frame(rng, 500)
    batch.loc[:59, "c"] = "zz"
    batch.loc[60:64, "c"] = "new"
    f = measure_drift(profile, batch, DriftTrigger()).features["c"]
    assert f.unseen == 65
    assert f.unseen_categories == ["zz", "new"]
    assert f.drifted  # 13% of the batch in a category the model never saw


def test_out_of_range_counted_not_crashing(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(17)
    batch = _frame(rng, 500)
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
    batch = _frame(rng, 400).drop(columns=["y"])
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
    batch = _frame(rng, 1000)
    same = measure_drift(profile, batch, DriftTrigger(), scores=rng.beta(2, 5, 1000)).score
    assert same is not None and not same.drifted and same.psi < 0.05  # type: ignore[operator]
    moved = measure_drift(profile, batch, DriftTrigger(), scores=rng.beta(5, 2, 1000)).score
    assert moved is not None and moved.drifted and moved.ks > 0.5  # type: ignore[operator]
    assert measure_drift(profile, batch, DriftTrigger()).score is None


def test_report_rows_and_json(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(20)
    rep = measure_drift(profile, _frame(rng, 300, shift=1.0), DriftTrigger(), scores=rng.uniform(size=300))
    rows = rep.to_rows()
    assert [r["name"] for r in rows] == ["x", "y", "k", "c", "prediction_score"]
    assert rows[0]["drifted"] is True and rows[0]["statistic"] == "psi"
    assert DriftReport.model_validate_json(rep.model_dump_json()) == rep
    assert rep.summary
