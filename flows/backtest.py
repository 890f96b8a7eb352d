"""The backtest flow: replay a model's history under several retrain policies, in parallel, and report.

load inputs -> cut into batches -> replay each policy (one task per policy, in threads sharing a
memo of fits and scores) -> rank + Pareto front -> publish artifacts -> write CSV, JSON and plots.
The replay is `evergreen.backtest` (pure), the plots `evergreen.reports.backtest`; the tasks are in
tasks/backtest.py.
"""

from __future__ import annotations

import json
import time
from typing import Any, cast

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from evergreen import backtest as bt
from evergreen.settings import get_settings
from evergreen.spec import MetricName
from tasks.backtest import load_inputs, progress_hook, publish, replay_policy, save_outputs

__all__ = ["backtest", "progress_hook"]

# `flow(task_runner=)` is typed TaskRunner[PrefectFuture[Any]] and TaskRunner is invariant in its
# future type, so the thread-pool runner (TaskRunner[PrefectConcurrentFuture]) needs a cast.
THREADS = cast("TaskRunner[PrefectFuture[Any]]", ThreadPoolTaskRunner())


def _marks(drifts: list[str] | None, pset: bt.PolicySet) -> list[str | int]:
    """Known drift points: the parameter's, else the policies file's; digit strings are batch numbers."""
    marks: list[str | int] = list(drifts) if drifts is not None else list(pset.drifts)
    return [int(m) if isinstance(m, str) and m.isdigit() else m for m in marks]


@flow(name="backtest", task_runner=THREADS, log_prints=False)
def backtest(
    model: str,
    policies_file: str | None = None,
    policies: list[dict[str, Any]] | None = None,
    data: str | None = None,
    batch_period: str | None = None,
    batch_rows: int | None = None,
    warmup: int = 4,
    drifts: list[str] | None = None,
    rank_by: MetricName | None = None,
    out_dir: str | None = None,
    write_files: bool = True,
) -> dict[str, Any]:
    """Replay `model`'s history under each policy and report metric vs retrains.

    Args:
        model: name of `models/<model>.yaml`.
        policies_file: YAML list of policies (see policies/elec2.yaml); or pass `policies` inline.
        policies: the same list, inline.
        data: history file (csv or parquet); default: the model's seed data.
        batch_period: batch length, e.g. "7D" (default when batch_rows is not given).
        batch_rows: rows per batch instead of a period.
        warmup: training-only batches before scoring starts.
        drifts: known drift points (timestamps or batch numbers) for detection delay; default: the file's.
        rank_by: "accuracy" or the spec's metric (default).
        out_dir: where CSV/JSON/HTML/PNG go; default EVERGREEN_HOME/reports/backtest.
        write_files: false: artifacts only.
    """
    log = get_run_logger()
    start = time.perf_counter()
    spec, frame, pset = load_inputs(model, data, policies_file, policies)
    replay = bt.prepare(
        frame,
        spec,
        batch_period=batch_period,
        batch_rows=batch_rows,
        warmup=warmup,
        drifts=_marks(drifts, pset),
    )
    # the every-batch and every-N baselines always run beside the file's policies (honest comparison)
    with_base = bt.with_baselines(list(pset.policies), pset.baseline_every)
    resolved = [bt.resolve_policy(p, spec) for p in with_base]
    log.info("%d %s (%d warm-up), %d policies", replay.n_batches, replay.batching, warmup, len(resolved))
    cache = bt.ReplayCache(replay)
    futures = [replay_policy.submit(replay, rp, cache) for rp in resolved]
    report = bt.summarize(replay, [f.result() for f in futures], rank_by=rank_by)
    report = report.model_copy(update={"seconds": round(time.perf_counter() - start, 3), **cache.stats()})
    log.info(
        "compute seconds by kind (cache misses only): %s; calls: %s",
        report.compute_seconds,
        report.compute_calls,
    )
    table = publish(report)
    files: dict[str, str] = {}
    if write_files:
        files = save_outputs(report, out_dir or str(get_settings().reports_dir / "backtest"))
    out = json.loads(report.model_dump_json())
    out.update({"table": table, "files": files})
    return out
