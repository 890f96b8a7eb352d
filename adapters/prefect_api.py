"""Prefect API I/O: emitting Evergreen events and publishing artifacts (plain functions, no tasks)."""

from __future__ import annotations

from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.events import Event as PrefectEvent
from prefect.events import emit_event

from evergreen.events import Event, resource

__all__ = ["EventNotEmitted", "emit", "publish_markdown", "publish_table", "resource"]


class EventNotEmitted(RuntimeError):
    """emit_event returned None: the event was dropped (bad labels, or events disabled)."""


def emit(
    event: str, model: str, payload: dict[str, Any], labels: dict[str, str] | None = None
) -> PrefectEvent:
    """Emit one Evergreen event and fail loudly if Prefect dropped it."""
    try:
        name = Event(event)
    except ValueError:
        raise ValueError(f"unknown Evergreen event {event!r}") from None
    ev = emit_event(event=name.value, resource=resource(model, labels), payload={"model": model, **payload})
    if ev is None:
        raise EventNotEmitted(
            f"{name.value} for {model} was not emitted (check PREFECT_API_URL and event labels)"
        )
    return ev


def publish_markdown(key: str, markdown: str, description: str) -> None:
    create_markdown_artifact(key=key, markdown=markdown, description=description)


def publish_table(key: str, rows: list[dict[str, Any]], description: str) -> None:
    create_table_artifact(key=key, table=rows, description=description)
