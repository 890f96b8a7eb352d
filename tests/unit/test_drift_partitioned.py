"""Partitioned drift (evergreen.drift.partitioned) equals single-process measure_drift (pure, fast)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evergreen.drift import ReferenceProfile, measure_drift
from evergreen.drift.partitioned import merge_all, partition_stats, report_from_batch_stats
from evergreen.spec import DriftTrigger, Feature
from tests.unit.drift_synth import make_frame, reference_frame, reference_profile


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    return reference_profile(reference_frame())


def drifted_batch(n: int, seed: int = 3) -> pd.DataFrame:
    """Shifted, with nulls, out-of-range values, an unseen category and a score column."""
    rng = np.random.default_rng(seed)
    batch = make_frame(rng, n, shift=0.6)
    batch.loc[batch.sample(frac=0.02, random_state=1).index, "x"] = np.nan
    batch.loc[batch.index[:5], "y"] = 1e6  # above the reference max
    batch.loc[batch.index[5:9], "x"] = -50.0  # below the reference min
    batch.loc[batch.index[10:30], "c"] = "zz"  # unseen
    batch.loc[batch.index[30:40], "c"] = None
    batch["score"] = rng.beta(2.5, 5, n)
    batch.loc[batch.index[40:45], "score"] = 1.5
    return batch


def split(frame: pd.DataFrame, k: int) -> list[pd.DataFrame]:
    return [frame.iloc[idx] for idx in np.array_split(np.arange(len(frame)), k)]


def assert_reports_equal(single: dict, parted: dict) -> None:
    """Every field equal; batch_mean (a float sum of partition sums) to rounding only."""
    for section in ("features", "score"):
        a, b = single[section], parted[section]
        items = a.items() if section == "features" else [("score", a)]
        for name, fa in items:
            fb = b[name] if section == "features" else b
            if fa is None or fb is None:  # no score measured
                assert fa is None and fb is None
                continue
            ma, mb = fa.pop("batch_mean"), fb.pop("batch_mean")
            assert (ma is None and mb is None) or mb == pytest.approx(ma, rel=1e-12, abs=1e-15), name
            assert fa == fb, name
    single.pop("features"), parted.pop("features"), single.pop("score"), parted.pop("score")
    assert single == parted


@pytest.mark.parametrize("partitions", [1, 3, 17])
def test_partitioned_report_equals_single_process(profile: ReferenceProfile, partitions: int) -> None:
    batch = drifted_batch(60_000 + partitions)  # > 50k rows: partitions take the fast and plain binning paths
    cfg = DriftTrigger(share=0.3)
    features = [Feature(name="x", type="numeric", critical=True)]
    single = measure_drift(profile, batch, cfg, features=features, scores=batch["score"].to_numpy())
    parts = [partition_stats(profile, p, "score") for p in split(batch, partitions)]
    parted = report_from_batch_stats(profile, merge_all(parts), cfg, features=features)
    assert single.features["x"].out_of_range > 0 and single.features["c"].unseen == 20
    assert single.dataset_drift
    assert_reports_equal(single.model_dump(), parted.model_dump())


def test_bin_counts_add_up_exactly(profile: ReferenceProfile) -> None:
    batch = drifted_batch(80_000)
    whole = partition_stats(profile, batch, "score")
    summed = merge_all(partition_stats(profile, p, "score") for p in split(batch, 5))
    for name, w in whole.numeric.items():
        s = summed.numeric[name]
        assert np.array_equal(w.counts, s.counts) and (w.below, w.above, w.n, w.nulls) == (
            s.below,
            s.above,
            s.n,
            s.nulls,
        )
    assert summed.categorical["c"] == whole.categorical["c"]
    assert summed.score is not None and whole.score is not None
    assert np.array_equal(summed.score.counts, whole.score.counts)


def test_missing_column_and_empty_partition(profile: ReferenceProfile) -> None:
    batch = drifted_batch(5_000).drop(columns=["y"])
    cfg = DriftTrigger()
    single = measure_drift(profile, batch, cfg)
    parts = [partition_stats(profile, batch.iloc[:0]), partition_stats(profile, batch)]
    parted = report_from_batch_stats(profile, merge_all(parts), cfg)
    assert parted.features["y"].missing
    a, b = single.model_dump(), parted.model_dump()
    for d in (a, b):
        for f in d["features"].values():
            f.pop("batch_mean")
    assert a == b
