"""Drift and profiles over a dask.dataframe on a real distributed LocalCluster equal the single-process numbers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from adapters.dask_engine import as_dask_frame, build_profile_dask, dask_client, measure_drift_dask
from evergreen.drift import build_profile, measure_drift
from evergreen.spec import DriftTrigger, Feature
from tests.unit.drift_synth import reference_frame, reference_profile
from tests.unit.test_drift_partitioned import assert_reports_equal, drifted_batch

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    # Two worker processes: partials really cross process boundaries (pickled), as on a cluster.
    with dask_client(n_workers=2, threads_per_worker=1, processes=True) as c:
        yield c


def test_dask_drift_equals_single_process(client: Any) -> None:
    profile = reference_profile(reference_frame())
    batch = drifted_batch(120_000)
    cfg = DriftTrigger(share=0.3)
    features = [Feature(name="x", type="numeric", critical=True)]
    single = measure_drift(profile, batch, cfg, features=features, scores=batch["score"].to_numpy())
    ddf = as_dask_frame(batch, npartitions=6)
    parted = measure_drift_dask(profile, ddf, cfg, features=features, score_column="score")
    assert single.dataset_drift and single.features["c"].unseen == 20
    assert_reports_equal(single.model_dump(), parted.model_dump())


def test_dask_profile_equals_single_process(client: Any) -> None:
    history = reference_frame()
    history.loc[history.index[::97], "y"] = None
    single = build_profile(history, ["x", "y", "k"], ["c"])
    parted = build_profile_dask(as_dask_frame(history, npartitions=5), ["x", "y", "k"], ["c"])
    assert parted == single  # edges, counts, mean, std, min/max, category counts: all exact
