"""The label-request flow (issue 12): pick the rows of an unlabelled batch whose labels would help most.

batch file -> unlabelled rows -> champion scores -> `budget` rows by uncertainty (margin/entropy) or at
random (the control) -> queue CSV + Prefect table/markdown artifacts -> `evergreen.labels.requested`.
The labeller fills the target column and returns the file through `evergreen ingest-labels` (the
delayed-labels path), after which a retrain trains on those labels. docs/strategies.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger

from adapters.batch_files import read_batch
from evergreen import active
from evergreen.events import Event
from evergreen.labels import id_column
from tasks.active import (
    UNCERTAINTY,
    append_ledger,
    queue_path,
    read_ledger,
    select_rows,
    unlabelled_rows,
    write_queue,
)
from tasks.announce import emit_event, publish_markdown, publish_table
from tasks.spec import load_model_spec


def _artifact_key(model: str) -> str:
    return f"labels-requested-{model}".lower().replace("_", "-")


@flow(name="request-labels", log_prints=False)
def request_labels(
    model: str,
    path: str,
    budget: float | None = None,
    strategy: str | None = None,
    seed: int = 0,
    out_dir: str | None = None,
) -> dict[str, Any]:
    """Select the batch's unlabelled rows worth labelling, within the spec's budget.

    `budget` (a share, or a row count if > 1) and `strategy` override `data.delayed_labels.request` for this
    batch; the spec's `rows_per_period` caps every request, counted over the period's earlier requests.
    """
    spec = load_model_spec(model)
    if spec.data.delayed_labels is None:
        raise ValueError(
            f"{model}: label requests need data.delayed_labels (an id column to return labels by)"
        )
    req = spec.data.delayed_labels.request
    strategy = strategy or req.strategy
    if strategy not in active.STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {', '.join(active.STRATEGIES)}")
    id_col = id_column(spec)  # labels come back by row id through the delayed-labels path
    rows = unlabelled_rows(spec, read_batch(Path(path)))
    if id_col not in rows.columns:
        raise ValueError(f"{path}: no id column {id_col!r} (data.delayed_labels.id_column)")
    if rows.empty:
        raise ValueError(f"{path}: no unlabelled rows to request labels for")
    now = pd.Timestamp.now(tz="UTC")
    used = active.requested_in_period(read_ledger(model), now, req.period)
    budget = req.share if budget is None else budget
    k = active.request_size(len(rows), budget, req.rows_per_period, used)
    queue, champion = select_rows(spec, rows, k, strategy, seed)
    out = write_queue(queue, spec, id_col, queue_path(model, path, strategy, out_dir))
    append_ledger(
        model, {"at": now.isoformat(), "requested": len(queue), "source": str(path), "queue": str(out)}
    )
    payload = {
        "source": str(path), "queue": str(out), "strategy": strategy, "budget": budget,
        "requested": len(queue), "unlabelled_rows": len(rows), "champion_version": champion,
        "period": req.period, "rows_per_period": req.rows_per_period, "requested_in_period": used + len(queue),
        "ids": [str(v) for v in queue[id_col].tolist()[:1000]],
    }  # fmt: skip
    key = _artifact_key(model)
    publish_table(key, queue[[id_col, UNCERTAINTY]].astype(str).to_dict("records"), f"{model}: rows to label")
    publish_markdown(
        f"{key}-summary",
        f"### {model}: {len(queue)} labels requested\n\n"
        f"{len(queue)} of {len(rows)} unlabelled rows of `{Path(path).name}` by **{strategy}** "
        f"(budget {budget}, champion v{champion or '-'}).\n\nQueue: `{out}`. Return it with "
        f"`evergreen ingest-labels {model} <file>` once the `{spec.data.target}` column is filled.",
        f"{model}: label request",
    )
    emit_event(Event.LABELS_REQUESTED.value, model, payload)
    get_run_logger().info("%s: %d labels requested (%s) -> %s", model, len(queue), strategy, out)
    return {"model": model, **payload}
