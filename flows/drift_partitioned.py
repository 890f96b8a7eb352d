"""Drift of a batch too big for one process: one Prefect task per partition file on a DaskTaskRunner.

find champion -> load profile -> fan out `partition_drift` over the files (Dask workers) -> add the
bin counts up -> the DriftReport (evergreen.drift.partitioned: the numbers equal measure_drift's on
the concatenated batch). It measures and reports; it emits no events (the monitor flow stays the
decision path). docs/scale.md: pointing at an existing scheduler, and Kubernetes work pools.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE

from evergreen.drift.partitioned import BatchStats, merge_all, partition_stats, report_from_batch_stats
from evergreen.drift.profile import ReferenceProfile
from tasks.dask import dask_task_runner
from tasks.monitoring import find_champion, load_profile
from tasks.spec import load_model_spec


def partition_files(paths: list[str]) -> list[str]:
    """The parquet/CSV files of `paths` (a directory means its *.parquet files), in sorted order."""
    out: list[str] = []
    for p in paths:
        path = Path(p)
        out += sorted(str(f) for f in path.glob("*.parquet")) if path.is_dir() else [str(path)]
    if not out:
        raise ValueError(f"no partition files in {paths}")
    return out


@task(retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def partition_drift(profile: ReferenceProfile, path: str) -> BatchStats:
    """One partition file binned against the fixed profile (runs on a Dask worker)."""
    frame = pd.read_csv(path) if path.endswith(".csv") else pd.read_parquet(path)
    return partition_stats(profile, frame)


@flow(name="drift-fan-out")
def fan_out(profile: ReferenceProfile, files: list[str]) -> BatchStats:
    """Submit one partition_drift per file to the flow's task runner; fold the results in file order."""
    futures = partition_drift.map(unmapped(profile), files)
    return merge_all(f.result() for f in futures)


@flow(name="drift-partitioned")
def drift_partitioned(
    model: str, paths: list[str], address: str | None = None, workers: int = 2
) -> dict[str, Any]:
    """Measure drift of `model`'s champion on a batch split across files, on Dask.

    Args:
        model: name of `models/<model>.yaml`.
        paths: parquet/CSV files, or directories of parquet files: the partitions of one batch.
        address: Dask scheduler (tcp://host:8786); default $EVERGREEN_DASK_ADDRESS, else a LocalCluster.
        workers: LocalCluster worker processes when no scheduler is given.
    """
    spec = load_model_spec(model)
    champ = find_champion(model)
    if champ is None:
        raise ValueError(f"{model} has no champion: nothing to measure against")
    profile = load_profile(champ)
    files = partition_files(paths)
    runner = dask_task_runner(address, workers)
    stats = fan_out.with_options(task_runner=runner)(profile, files)
    report = report_from_batch_stats(profile, stats, spec.triggers.drift, features=spec.features)
    get_run_logger().info(
        "%s v%s: %d rows in %d partitions, drifted: %s",
        model,
        champ.version,
        report.n_rows,
        len(files),
        report.drifted_features or "none",
    )
    return {
        "model": model,
        "champion_version": champ.version,
        "partitions": len(files),
        "report": report.model_dump(mode="json"),
    }
