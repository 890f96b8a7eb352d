"""The one registry of Evergreen event names, the event resource, and pure payload builders.

Every decision Evergreen takes is a Prefect event on the resource `evergreen.model.<name>`;
automations and the demo match these names, so they are part of the public interface.
"""

from __future__ import annotations

from enum import StrEnum


class Event(StrEnum):
    """Every event name Evergreen emits (the values are the wire names)."""

    DATA_INGESTED = "evergreen.data.ingested"
    DATA_REJECTED = "evergreen.data.rejected"
    DRIFT_MEASURED = "evergreen.drift.measured"
    DRIFT_DETECTED = "evergreen.drift.detected"
    PERFORMANCE_DEGRADED = "evergreen.performance.degraded"
    RETRAIN_SKIPPED = "evergreen.retrain.skipped"
    MODEL_REGISTERED = "evergreen.model.registered"
    MODEL_PROMOTED = "evergreen.model.promoted"
    MODEL_REJECTED = "evergreen.model.rejected"
    MODEL_ROLLED_BACK = "evergreen.model.rolled-back"


EVENT_PREFIX = "evergreen."
# Triggers cannot compare payload numbers, so the volume verdict travels as a resource label.
VOLUME_LABEL = "evergreen.volume-threshold-met"


def resource_id(model: str) -> str:
    """The Prefect resource id every event of `model` is emitted on."""
    return f"evergreen.model.{model}"


def resource(model: str, labels: dict[str, str] | None = None) -> dict[str, str]:
    """The event resource. Extra labels let triggers `match:` on facts (payloads cannot be matched)."""
    return {"prefect.resource.id": resource_id(model), "prefect.resource.name": model, **(labels or {})}
