"""Dask as the scale-out engine: cluster wiring, partitioned drift and profiles, lightgbm.dask fits (docs/scale.md).

Everything parallel here is Dask's own machinery (dask.delayed over a dask.dataframe's partitions,
a distributed Client); the statistics are evergreen.drift's, so results equal the single-process
ones. `EVERGREEN_DASK_ADDRESS` (or `address=`) points at an existing scheduler
(`tcp://scheduler:8786`); without one a LocalCluster is started for the call.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evergreen.drift.partitioned import BatchStats, merge_all, partition_stats, report_from_batch_stats
from evergreen.drift.profile import (
    CategoricalProfile,
    ReferenceProfile,
    _numeric_profile,
    as_float,
    category_counts,
)
from evergreen.drift.report import DriftReport
from evergreen.spec import DriftTrigger, Feature
from evergreen.spec_engine import TrainingEngine

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

ADDRESS_ENV = "EVERGREEN_DASK_ADDRESS"


def scheduler_address(address: str | None = None) -> str | None:
    """The scheduler to use: the argument, else $EVERGREEN_DASK_ADDRESS, else None (a LocalCluster)."""
    return address or os.environ.get(ADDRESS_ENV) or None


@contextmanager
def dask_client(
    address: str | None = None, *, n_workers: int = 2, threads_per_worker: int = 1, processes: bool = True
) -> Iterator[Any]:
    """A distributed Client on `address`, or on a LocalCluster started (and closed) for the block."""
    from distributed import Client, LocalCluster

    addr = scheduler_address(address)
    if addr:
        with Client(addr) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            processes=processes,
            dashboard_address=None,
            host="127.0.0.1",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def as_dask_frame(frame: Any, npartitions: int = 8) -> Any:
    """A dask.dataframe from a pandas frame (or the dask frame itself)."""
    import dask.dataframe as dd

    if isinstance(frame, pd.DataFrame):
        return dd.from_pandas(frame, npartitions=npartitions, sort=False)
    return frame


def batch_stats(profile: ReferenceProfile, ddf: Any, score_column: str | None = None) -> BatchStats:
    """Per-partition bin counts against the fixed profile, computed on the cluster and summed.

    The profile is sent once (one delayed object); each task returns a small BatchStats. The fold is
    in partition order, so reruns give the same float sums.
    """
    import dask

    prof = dask.delayed(profile, pure=True)
    parts = [dask.delayed(partition_stats)(prof, p, score_column) for p in ddf.to_delayed()]
    return merge_all(dask.compute(*parts))


def measure_drift_dask(
    profile: ReferenceProfile,
    ddf: Any,
    cfg: DriftTrigger,
    *,
    features: Sequence[Feature] | None = None,
    score_column: str | None = None,
    alpha: float | None = None,
) -> DriftReport:
    """measure_drift over a partitioned batch: the same DriftReport numbers (docs/scale.md).

    Runs on the current Dask client (dask_client()), or the local threaded scheduler without one.
    `score_column` names a column of model scores (1-D points on [0, 1]) to measure score drift.
    """
    stats = batch_stats(profile, as_dask_frame(ddf), score_column)
    return report_from_batch_stats(profile, stats, cfg, features=features, alpha=alpha)


def _category_partial(part: pd.DataFrame, columns: list[str]) -> dict[str, tuple[dict[str, int], int]]:
    return {c: category_counts(part[c]) for c in columns}


def build_profile_dask(
    ddf: Any, numeric: list[str], categorical: list[str], *, bins: int = 100
) -> ReferenceProfile:
    """build_profile over partitioned history, for the feature summaries (exactly equal).

    Quantile edges must be actual reference values at exact ranks (inverted-CDF quantiles), so each
    numeric column is gathered to the client one at a time and summarised by the single-process code:
    memory is 8 bytes x rows for ONE column (100M rows: 800 MB), never the whole frame. Categorical
    counts are per-partition value counts summed on the cluster. Labels, scores and metrics are the
    model's and stay with the in-memory training path (evergreen.training).
    """
    import dask

    ddf = as_dask_frame(ddf)
    missing = [c for c in [*numeric, *categorical] if c not in ddf.columns]
    if missing:
        raise ValueError(f"columns not in the frame: {missing}")
    n_rows = int(ddf.shape[0].compute())
    num = {c: _numeric_profile(as_float(ddf[c].compute()), bins) for c in numeric}
    cat: dict[str, CategoricalProfile] = {}
    if categorical:
        parts = dask.compute(*[dask.delayed(_category_partial)(p, categorical) for p in ddf.to_delayed()])
        for c in categorical:
            freq: dict[str, int] = {}
            nulls = 0
            for part in parts:
                counts, n = part[c]
                nulls += n
                for k, v in counts.items():
                    freq[k] = freq.get(k, 0) + v
            cat[c] = CategoricalProfile(count=n_rows - nulls, nulls=nulls, frequencies=freq)
    return ReferenceProfile(n_rows=n_rows, bins=bins, numeric=num, categorical=cat)


def float_matrix(ddf: Any, columns: list[str]) -> Any:
    """A dask array of float64 features (for lightgbm.dask), with known chunk sizes."""
    return ddf[columns].astype(np.float64).to_dask_array(lengths=True)


def fit_lightgbm_dask(
    engine: TrainingEngine,
    pipe: Pipeline,
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    task: str,
    sample_weight: np.ndarray | None = None,
    categorical: list[str] | None = None,
) -> Pipeline:
    """Fit `pipe` (prep + an LGBM estimator) with lightgbm.dask; the model step becomes `.to_local()`.

    The preprocessing step is fitted here (an ordinal encoding and passthrough: cheap, O(rows)); the
    boosting runs as DaskLGBMClassifier/Regressor across the cluster's workers, with the estimator's
    own parameters. The returned Pipeline holds a plain LGBMClassifier/LGBMRegressor, so scoring,
    MLflow logging, pyfunc serving and the gate treat it like any other fit.
    """
    import dask.dataframe as dd
    from lightgbm.dask import DaskLGBMClassifier, DaskLGBMRegressor

    prep = pipe.steps[0][1]
    params = pipe.steps[-1][1].get_params()
    Xt = prep.fit_transform(X, y).reset_index(drop=True)
    with dask_client(engine.address, n_workers=engine.workers) as client:
        n_workers = max(1, len(client.scheduler_info()["workers"]))
        # Equal-length chunks from one chunk size, so X, y and weights partitions line up.
        chunk = max(1, -(-len(Xt) // n_workers))
        Xd = dd.from_pandas(Xt, chunksize=chunk, sort=False)
        yd = dd.from_pandas(pd.Series(y, name="y"), chunksize=chunk, sort=False)
        kwargs: dict[str, Any] = {}
        if sample_weight is not None:
            kwargs["sample_weight"] = dd.from_pandas(
                pd.Series(sample_weight, name="w"), chunksize=chunk, sort=False
            )
        if categorical:
            kwargs["categorical_feature"] = categorical
        cls = DaskLGBMRegressor if task == "regression" else DaskLGBMClassifier
        dmodel = cls(client=client, **params).fit(Xd, yd, **kwargs)
        local = dmodel.to_local()
    pipe.steps[-1] = ("model", local)
    pipe.evergreen_engine = f"dask:{n_workers}"  # type: ignore[attr-defined]
    return pipe
