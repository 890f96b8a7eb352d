"""The retrain flow's reasons and what it returns (as a dict); no Prefect import, for the CLI's checks."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

Reason = Literal["manual", "schedule", "drift", "performance", "volume", "estimated", "backfill"]


class RetrainOutcome(BaseModel):
    """What `evergreen retrain --json` prints and the flow returns."""

    model: str
    status: Literal["promoted", "rejected", "skipped", "shadow"]  # shadow: docs/release.md
    reason: str
    version: str | None = None
    champion_version: str | None = None
    previous_champion: str | None = None
    decision: dict[str, Any] | None = None
    metrics: dict[str, float | None] = {}
    data_version: str | None = None
    run_id: str | None = None
    detail: str = ""
    # passed | rejected | insufficient_evidence (None when skipped); added in issue 9.
    gate_outcome: str | None = None
    # Coarse timings for benchmarks/retrain.py; per-step durations are in Prefect's task runs.
    seconds: dict[str, float] = {}
    # training.update (issue 11): "full" or "update", and the version an update continued.
    training_mode: str | None = None
    base_version: str | None = None
    # promotion.approval (issue 13): the person's answer, when the run paused for one.
    approval: dict[str, Any] | None = None
