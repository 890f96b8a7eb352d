"""Announcing decisions: Prefect events and artifacts (tasks over adapters.prefect_api).

No retries: a retried event could fire an automation twice.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from adapters import prefect_api


@task(cache_policy=NO_CACHE)
def emit_event(event: str, model: str, payload: dict[str, Any], labels: dict[str, str] | None = None) -> str:
    """Emit one Evergreen event; returns its id."""
    return str(prefect_api.emit(event, model, payload, labels).id)


@task(cache_policy=NO_CACHE)
def publish_markdown(key: str, markdown: str, description: str) -> None:
    prefect_api.publish_markdown(key, markdown, description)


@task(cache_policy=NO_CACHE)
def publish_table(key: str, rows: list[dict[str, Any]], description: str) -> None:
    prefect_api.publish_table(key, rows, description)
