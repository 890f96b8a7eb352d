"""The ingest flow: read -> admit -> validate (GX) -> check rows and commit -> push -> announce.

Only a committed and pushed batch is reported ingested; its audit entry and `evergreen.data.ingested`
event come after the push, and a batch whose announcement failed stays pending in the registry until an
ingest completes it (docs/ingest.md "Crashes and retries"). Refused batches are quarantined with their
reasons, announced with `evergreen.data.rejected` and audited as reject-batch (exit 2).
The volume rule is `evergreen.volume.volume_decision`, the same rule (and inputs) the backtester replays.

This module is the deployment's entrypoint and imports only Prefect and pydantic, so a process worker's
flow-run process reaches `Running` sooner; the steps live in flows/ingest_run.py, imported inside the
flow. The exceptions and the outcome model stay here (`flows.ingest.BatchRejected` is a CLI contract).
"""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow
from pydantic import BaseModel


class BatchRejected(RuntimeError):
    """The batch was refused and quarantined; the message names the reasons."""


class IngestIncomplete(RuntimeError):
    """The batch is committed and pushed, but its announcement (audit entry, event) is still pending."""


class IngestOutcome(BaseModel):
    model: str
    status: Literal["ingested", "rejected", "duplicate"]
    source: str
    rows: int
    data_version: str | None = None
    data_rev: str | None = None
    total_rows: int | None = None
    dataset_created: bool = False
    new_rows_since_champion: int | None = None
    new_share: float | None = None  # None when there is no champion to compare with
    volume_threshold_met: bool = False
    quarantined_to: str | None = None
    report: str | None = None
    failures: list[str] = []
    checks: dict[str, Any] | None = None  # BatchCheck.as_dict(): how the received rows split


@flow(name="ingest", log_prints=False)
def ingest(model: str, path: str) -> dict[str, Any]:
    """Validate `path` (CSV or parquet) against models/<model>.yaml; append its new rows or quarantine it."""
    # The steps (and pandas, GX, DVC, MLflow) are imported here, after the run is Running: a process
    # worker's flow-run process imports this module before that.
    from flows.ingest_run import run

    return run(model, path)
