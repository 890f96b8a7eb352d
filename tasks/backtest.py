"""The backtest flow's tasks: load the inputs, replay one policy, publish artifacts, write the files.

The replay is `evergreen.backtest` (pure); the plots are `evergreen.reports.backtest`. Policies run in
threads of one process, so the CLI's progress bar is a plain callback registered with `progress_hook`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from adapters import prefect_api
from adapters.batch_files import read_batch
from evergreen import backtest as bt
from evergreen.artifacts import artifact_key
from evergreen.reports.backtest import write_outputs
from evergreen.settings import get_settings
from evergreen.spec import ModelSpec, load_spec

SEEDS = Path("seeds")

# ---- progress: the CLI registers a callback; tasks run in this process's threads and call it ----

_hooks: list[bt.OnBatch] = []
_hooks_lock = threading.Lock()


@contextlib.contextmanager
def progress_hook(callback: bt.OnBatch) -> Iterator[None]:
    """Call `callback(policy, done, total)` after every scored batch of any policy while inside."""
    with _hooks_lock:
        _hooks.append(callback)
    try:
        yield
    finally:
        with _hooks_lock:
            _hooks.remove(callback)


def _notify(policy: str, done: int, total: int) -> None:
    for cb in list(_hooks):
        cb(policy, done, total)


def seed_frame(model: str) -> pd.DataFrame:
    """The model's seed history from seeds/ (the shipped models: evergreen.datasets.SEEDS)."""
    from evergreen.datasets import seed_frame as prepared

    return prepared(model, SEEDS)


@task(cache_policy=NO_CACHE)
def load_inputs(
    model: str, data: str | None, policies_file: str | None, policies: list[dict[str, Any]] | None
) -> tuple[ModelSpec, pd.DataFrame, bt.PolicySet]:
    """The spec, the history (a file, or the seed data) and the policies (a file, or inline)."""
    spec = load_spec(model, get_settings().models_dir)
    frame = read_batch(Path(data)) if data else seed_frame(model)
    if policies_file and policies:
        raise ValueError("give a policies file or inline policies, not both")
    if policies_file:
        pset = bt.load_policies(Path(policies_file))
    elif policies:
        pset = bt.parse_policies(policies, source="(flow parameter)")
    else:
        raise ValueError("no policies: pass a policies file (--policies FILE.yaml)")
    get_run_logger().info("%s: %d rows, %d policies", model, len(frame), len(pset.policies))
    return spec, frame, pset


@task(cache_policy=NO_CACHE, task_run_name="replay-{policy.name}")
def replay_policy(replay: bt.Replay, policy: bt.ResolvedPolicy, cache: bt.ReplayCache) -> bt.PolicyResult:
    """One policy over the whole replay (the cache is shared with the other policies' threads)."""
    result = bt.run_policy(replay, policy, cache=cache, on_batch=_notify)
    get_run_logger().info(
        "%s: mean accuracy %.4f, mean %s %s, %d retrains, %d promotions, %.1f train s",
        result.name,
        result.mean_accuracy or float("nan"),
        result.metric,
        "-" if result.mean_metric is None else f"{result.mean_metric:.4f}",
        result.retrains,
        result.promotions,
        result.train_seconds,
    )
    return result


@task(cache_policy=NO_CACHE)
def publish(report: bt.BacktestReport) -> list[dict[str, Any]]:
    """The summary table and the markdown report as Prefect artifacts; returns the table rows."""
    rows = bt.summary_rows(report)
    key = artifact_key("backtest", report.model)
    prefect_api.publish_table(key, rows, f"Policy backtest of {report.model}: one row per policy")
    prefect_api.publish_markdown(
        f"{key}-report", bt.to_markdown(report), f"Policy backtest of {report.model}"
    )
    return rows


@task(cache_policy=NO_CACHE)
def save_outputs(report: bt.BacktestReport, out_dir: str) -> dict[str, str]:
    """CSV, JSON, HTML and PNG under `out_dir`."""
    files = write_outputs(report, Path(out_dir))
    get_run_logger().info("wrote %s", ", ".join(files.values()))
    return files
