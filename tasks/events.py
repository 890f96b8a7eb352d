"""Prefect events for every Evergreen decision (resource `evergreen.model.<name>`)."""

from __future__ import annotations

from typing import Any

from prefect.events import Event, emit_event

EVENTS = {
    "evergreen.data.ingested",
    "evergreen.data.rejected",
    "evergreen.drift.measured",
    "evergreen.drift.detected",
    "evergreen.performance.degraded",
    "evergreen.retrain.skipped",
    "evergreen.model.registered",
    "evergreen.model.promoted",
    "evergreen.model.rejected",
    "evergreen.model.rolled-back",
}


class EventNotEmitted(RuntimeError):
    """emit_event returned None: the event was dropped (bad labels, or events disabled)."""


def resource(model: str, labels: dict[str, str] | None = None) -> dict[str, str]:
    """The event resource. Extra labels let triggers `match:` on facts (payloads cannot be matched)."""
    return {"prefect.resource.id": f"evergreen.model.{model}", "prefect.resource.name": model, **(labels or {})}


def emit(event: str, model: str, payload: dict[str, Any], labels: dict[str, str] | None = None) -> Event:
    """Emit one Evergreen event and fail loudly if Prefect dropped it."""
    if event not in EVENTS:
        raise ValueError(f"unknown Evergreen event {event!r}")
    ev = emit_event(event=event, resource=resource(model, labels), payload={"model": model, **payload})
    if ev is None:
        raise EventNotEmitted(f"{event} for {model} was not emitted (check PREFECT_API_URL and event labels)")
    return ev
