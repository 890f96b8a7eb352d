"""Reading events back from a real Prefect server, shared by the flow and e2e suites."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any


def read_events(
    api_url: str,
    *,
    resource_id: str | None = None,
    names: list[str] | None = None,
    prefix: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Events stored by the server (REST `POST /events/filter`, every page), oldest first."""
    flt: dict[str, Any] = {"order": "ASC"}
    if resource_id:
        flt["resource"] = {"id": [resource_id]}
    if names or prefix:
        flt["event"] = {k: v for k, v in (("name", names), ("prefix", prefix)) if v}
    req = urllib.request.Request(
        f"{api_url}/events/filter",
        data=json.dumps({"filter": flt, "limit": 50}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    events: list[dict[str, Any]] = []
    while True:
        with urllib.request.urlopen(req, timeout=30) as resp:
            page = json.loads(resp.read())
        events += page["events"]
        if not page.get("next_page"):
            return events
        req = urllib.request.Request(page["next_page"])


def wait_events(
    api_url: str, model: str, names: list[str], count: int, timeout: float = 60
) -> list[dict[str, Any]]:
    """Poll until the server holds `count` events of `names` about `model` (events arrive asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        evs = read_events(api_url, resource_id=f"evergreen.model.{model}", names=names)
        if len(evs) >= count or time.monotonic() > deadline:
            return evs
        time.sleep(0.5)
