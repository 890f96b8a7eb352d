"""Prefect's DaskTaskRunner (prefect-dask), configured the Evergreen way (docs/scale.md).

Any flow can run its tasks on Dask without changing the flow:
`backtest.with_options(task_runner=dask_task_runner())(model=...)` fans the backtest's per-policy
tasks out over a cluster; flows/drift_partitioned.py uses it for per-partition drift.
"""

from __future__ import annotations

import os
from typing import Any, cast

from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner
from prefect_dask import DaskTaskRunner

from adapters.dask_engine import ADDRESS_ENV


def dask_task_runner(address: str | None = None, workers: int = 2) -> TaskRunner[PrefectFuture[Any]]:
    """DaskTaskRunner on `address` (else $EVERGREEN_DASK_ADDRESS), else a LocalCluster for the flow run.

    The cast: `flow(task_runner=)` is typed TaskRunner[PrefectFuture[Any]] and TaskRunner is invariant
    in its future type (as for the backtest's thread-pool runner).
    """
    addr = address or os.environ.get(ADDRESS_ENV) or None
    if addr:
        runner = DaskTaskRunner(address=addr)
    else:
        runner = DaskTaskRunner(
            cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "dashboard_address": None}
        )
    return cast("TaskRunner[PrefectFuture[Any]]", runner)
