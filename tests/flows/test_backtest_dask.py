"""The backtest's per-policy tasks fanned out on Prefect's DaskTaskRunner (a 2-worker LocalCluster).

The flow is unchanged: `backtest.with_options(task_runner=dask_task_runner())`. Each policy's replay
runs on a Dask worker process; the per-policy results equal the default thread-pool run's.
"""

from __future__ import annotations

from typing import Any

from tests.flows.test_backtest_flow import workspace  # noqa: F401 - the fixture
from tests.unit.backtest_synth import ROWS, WARMUP

# cpu_ratio is CPU seconds over the every-batch baseline's: a timing too
_TIMING = {
    "seconds",
    "compute_seconds",
    "compute_calls",
    "cache_hits",
    "cache_misses",
    "files",
    "table",
    "cpu_ratio",
}


def _comparable(out: Any) -> Any:
    """The report without wall/CPU times and memo statistics (each Dask worker has its own memo)."""
    if isinstance(out, dict):
        return {
            k: _comparable(v)
            for k, v in out.items()
            if k not in _TIMING and not k.startswith("cache") and "seconds" not in k
        }
    if isinstance(out, list):
        return [_comparable(v) for v in out]
    return out


def test_backtest_policies_on_dask_equal_threads(prefect_harness, workspace):  # noqa: F811
    from flows.backtest import backtest
    from tasks.dask import dask_task_runner

    args = {
        "model": "synth",
        "policies_file": str(workspace["policies"]),
        "data": str(workspace["data"]),
        "batch_rows": ROWS,
        "warmup": WARMUP,
        "write_files": False,
    }
    threads = backtest(**args)
    on_dask = backtest.with_options(task_runner=dask_task_runner(workers=2))(**args)
    assert [p["name"] for p in on_dask["policies"]] == [p["name"] for p in threads["policies"]]
    for a, b in zip(_comparable(on_dask["policies"]), _comparable(threads["policies"]), strict=True):
        assert a == b, a["name"]  # retrains, metrics, verdicts per batch: the same replay
    assert _comparable(on_dask) == _comparable(threads)
