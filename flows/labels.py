"""The label-ingest flow for `data.delayed_labels` models: read -> check against the rows -> commit ->
push -> announce (`evergreen.labels.ingested`, an `ingest` audit entry with evidence kind "labels").

Labels for earlier rows are a new data version of the model's dataset (a `labels-*.parquet` part; reads
fill them in). Unknown ids, conflicting labels and invalid rows refuse the whole file: it is quarantined
like a rejected batch (`evergreen.data.rejected`, `reject-batch`, exit 2). docs/ingest.md "Delayed labels".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger
from pydantic import BaseModel

from adapters.dvc_ingest import Pending
from evergreen import events
from evergreen.audit import Action
from evergreen.labels import id_column
from flows.ingest_run import _incomplete, _reject, _unreachable, complete_pending
from tasks.audit import record_decision
from tasks.data import append_labels, emit_labels_ingested, mark_announced, read_labels
from tasks.spec import load_model_spec


class LabelsOutcome(BaseModel):
    model: str
    status: Literal["ingested", "duplicate"]
    source: str
    labels: int  # labels committed (for duplicate: the labels received)
    data_version: str | None = None
    data_rev: str | None = None
    labelled_rows: int | None = None
    unlabelled_rows: int | None = None
    checks: dict[str, Any] | None = None  # LabelCheck.as_dict()


def announce_labels(model: str, p: Pending) -> dict[str, Any]:
    """Audit entry, event, then forget the marker. MLflow failures leave it pending (as for batches)."""
    version = p.version()
    labelled = int(p.checks.get("labelled_rows", 0))
    outcome = LabelsOutcome(
        model=model, status="ingested", source=p.source, labels=p.rows, data_version=version.id,
        data_rev=version.rev, labelled_rows=labelled, unlabelled_rows=p.total_rows - labelled,
        checks=p.checks,
    )  # fmt: skip
    try:
        record_decision(
            model,
            Action.INGEST,
            versions={"data_version": version.id},
            reason=f"{p.rows} delayed labels from {Path(p.source).name}",
            evidence={
                "kind": "labels",
                "source": p.source,
                "labels": p.rows,
                "batch": p.batch,
                "checks": p.checks,
            },
            key=f"ingest-labels/{model}/{p.batch}/{version.rev[:12]}",
        )
    except Exception as exc:
        if _unreachable(exc):
            raise _incomplete(p, exc) from exc
        raise
    emit_labels_ingested(model, events.labels_ingested(outcome.model_dump()), version.rev)
    mark_announced(p.batch)
    get_run_logger().info(
        "ingested %s labels into %s: data_version %s (%s rows labelled, %s not yet)",
        p.rows, version.path, version.id, outcome.labelled_rows, outcome.unlabelled_rows,
    )  # fmt: skip
    return outcome.model_dump()


@flow(name="ingest-labels", log_prints=False)
def ingest_labels(model: str, path: str) -> dict[str, Any]:
    """Add delayed labels (a CSV/parquet of the id column and the target) to rows ingested earlier."""
    spec = load_model_spec(model)
    id_column(spec)  # a model without data.delayed_labels: one clear error, nothing quarantined
    src = Path(path)
    frame: Any = read_labels(src)
    appended = append_labels(spec, frame, str(src), model)
    check = appended.check
    if check.status == "rejected":
        _reject(
            model, src, len(frame), list(check.reasons), {"labels": check.as_dict()}, "; ".join(check.reasons)
        )
    own = next((p for p in appended.pending if p.batch == appended.batch), None)
    complete_pending(model, spec, [p for p in appended.pending if p is not own])
    if own is not None:
        return announce_labels(model, own)
    get_run_logger().warning("labels %s: %s", src, check.message())
    version = appended.version
    return LabelsOutcome(
        model=model, status="duplicate", source=str(src), labels=len(frame), checks=check.as_dict(),
        data_version=None if version is None else version.id, data_rev=None if version is None else version.rev,
    ).model_dump()  # fmt: skip
