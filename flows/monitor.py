"""The monitor flow: the champion's reference profile vs new rows -> drift (and performance) -> events.

find champion -> load profile -> select rows -> score -> assess -> persist streak -> announce.

Always emits `evergreen.drift.measured`; emits `evergreen.drift.detected` and/or
`evergreen.performance.degraded` when the spec's triggers say so (evergreen.monitoring.assess, the
same rules the backtester replays); with `triggers.estimated`, `evergreen.performance.estimated` on every
batch (tasks/estimate.py). The retrain deployment's triggers (prefect.yaml) turn those into
retrain runs. On labelled rows it also runs the release path (docs/release.md): the watch after a
promotion (tasks/watch.py: `champion.watched`, `champion.regressed`) and a pending shadow
(tasks/shadow.py: `shadow.scored`, then `shadow.promoted` or `shadow.retired`); the result's `watch`
and `shadow` keys hold their payloads (None when there was nothing to do). docs/events.md lists every
payload field.

This module is the deployment's entrypoint and imports only Prefect, so a process worker's flow-run
process reaches `Running` sooner; the steps live in flows/monitor_run.py, imported inside the flow.
"""

from __future__ import annotations

from typing import Any

from prefect import flow


@flow(name="monitor", log_prints=False)
def monitor(model: str, batch: str | None = None, data_rev: str | None = None) -> dict[str, Any]:
    """Measure drift (and, where labels exist, performance) of `model`'s champion on new rows.

    Args:
        model: name of `models/<model>.yaml`.
        batch: a CSV or parquet file to measure instead of registry rows.
        data_rev: data registry rev; measures the rows that rev's ingest added. Empty or omitted: the
            registry HEAD's rows newer than the champion's hold-out (what the champion has never seen).
    """
    if batch and data_rev:
        raise ValueError("give either batch or data_rev, not both")
    # The steps (and pandas, SciPy, scikit-learn, MLflow, DVC) are imported here, after the run is
    # Running: a process worker's flow-run process imports this module before that.
    from flows.monitor_run import run

    return run(model, batch, data_rev)
