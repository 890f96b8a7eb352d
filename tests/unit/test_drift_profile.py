"""Statistical checks of the reference profile, the batch binning and the drift statistics (pure, fast)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp, wasserstein_distance

from evergreen.drift import (
    ReferenceProfile,
    bin_counts,
    binning,
    build_profile,
    measure_drift,
    merge_groups,
    psi,
)
from evergreen.spec import DriftTrigger
from tests.unit.drift_synth import make_frame, reference_frame, reference_profile


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return reference_frame()


@pytest.fixture(scope="module")
def profile(reference: pd.DataFrame) -> ReferenceProfile:
    return reference_profile(reference)


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
    batch = make_frame(np.random.default_rng(1), 500, shift=0.5)
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
    batch = make_frame(rng, 120_000, shift=0.3)
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
