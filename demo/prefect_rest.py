"""The few Prefect REST calls the demo needs, over plain HTTP (no Prefect client, no client settings).

The demo talks to its own stack's server by URL, so a Prefect profile or PREFECT_API_URL of the user
cannot point it elsewhere.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import stack
from demo.options import DemoError

ACTIVE_STATES = {"SCHEDULED", "PENDING", "RUNNING", "CANCELLING", "PAUSED"}


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


class PrefectApi:
    """The few Prefect REST calls the demo needs (the server's own API; no client-side settings)."""

    def __init__(self, api_url: str) -> None:
        self.api = api_url.rstrip("/")
        self._deployments: dict[str, str] = {}

    def _post(self, path: str, body: object, timeout: float = 15.0) -> Any:
        last: tuple[int, object] = (0, None)
        for _ in range(5):
            last = stack.http_post_json(f"{self.api}{path}", body, timeout=timeout)
            if last[0] in (200, 201):
                return last[1]
            time.sleep(1.0)
        raise DemoError(f"POST {path} failed with HTTP {last[0]}")

    def _get(self, path: str) -> Any:
        status = 0
        for _ in range(5):
            status, body = stack.http_get(f"{self.api}{path}", timeout=15.0)
            if status == 200:
                return json.loads(body)
            time.sleep(1.0)
        raise DemoError(f"GET {path} failed with HTTP {status}")

    def deployment_id(self, name: str) -> str:
        if name not in self._deployments:
            self._deployments[name] = str(self._get(f"/deployments/name/{name}")["id"])
        return self._deployments[name]

    def run_deployment(self, name: str, parameters: dict[str, Any]) -> str:
        body = {"parameters": parameters, "state": {"type": "SCHEDULED"}}
        return str(self._post(f"/deployments/{self.deployment_id(name)}/create_flow_run", body)["id"])

    def _put(self, path: str, body: object) -> None:
        import urllib.error
        import urllib.request

        req = urllib.request.Request(
            f"{self.api}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="PUT",
        )
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:  # noqa: S310 (loopback URL)
                resp.read()
        except urllib.error.HTTPError as exc:
            raise DemoError(f"PUT {path} failed with HTTP {exc.code}: {exc.read()[:500]!r}") from exc

    def set_automation_within(self, deployment_id: str, within: float) -> list[str]:
        """Set `within` on every event-trigger automation that runs `deployment_id`; their names."""
        changed = []
        for auto in self._post("/automations/filter", {"limit": 200}) or []:
            trig = auto.get("trigger") or {}
            runs_it = any(a.get("deployment_id") == deployment_id for a in auto.get("actions") or [])
            if not runs_it or trig.get("type") != "event":
                continue
            trig["within"] = within
            keys = (
                "name",
                "description",
                "enabled",
                "tags",
                "trigger",
                "actions",
                "actions_on_trigger",
                "actions_on_resolve",
            )
            self._put(f"/automations/{auto['id']}", {k: auto[k] for k in keys if k in auto})
            changed.append(str(auto.get("name")))
        return changed

    def flow_run(self, run_id: str) -> dict[str, Any]:
        return dict(self._get(f"/flow_runs/{run_id}"))

    def wait_run(self, run_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            run = self.flow_run(run_id)
            if run.get("state_type") not in ACTIVE_STATES:
                return run
            if time.monotonic() > deadline:
                raise DemoError(f"flow run {run_id} still {run.get('state_type')} after {timeout:.0f}s")
            time.sleep(1.0)

    def flow_run_states(self, run_id: str) -> list[dict[str, Any]]:
        """The run's state history (Scheduled, Pending, Running, ...), as the server recorded it."""
        return list(self._get(f"/flow_run_states/?flow_run_id={run_id}") or [])

    def flow_runs(self, deployment_ids: list[str], since: datetime, limit: int = 200) -> list[dict[str, Any]]:
        """Runs of `deployment_ids` expected to start after `since`, up to `limit` (pages of 200)."""
        body: dict[str, Any] = {
            "flow_runs": {
                "deployment_id": {"any_": deployment_ids},
                "expected_start_time": {
                    "after_": _iso(since - timedelta(seconds=5)),
                    "before_": _iso(datetime.now(UTC) + timedelta(minutes=2)),
                },
            },
            "limit": min(limit, 200),
        }
        out: list[dict[str, Any]] = []
        while len(out) < limit:
            page = list(self._post("/flow_runs/filter", {**body, "offset": len(out)}) or [])
            out += page
            if len(page) < body["limit"]:
                break
        return out

    def events(
        self, since: datetime, names: list[str] | None = None, model: str | None = None
    ) -> list[dict[str, Any]]:
        """Evergreen events since `since` (or only those named `names`), oldest first; with `model`,
        only the events on that model's resource (several models share one server)."""
        body: dict[str, Any] = {
            "filter": {
                "occurred": {
                    "since": _iso(since - timedelta(seconds=1)),
                    "until": _iso(datetime.now(UTC) + timedelta(minutes=5)),
                },
                "event": {"name": names} if names else {"prefix": ["evergreen."]},
                "order": "ASC",
            },
            "limit": 50,  # the server's maximum page size
        }
        if model:
            from evergreen.events import resource_id

            body["filter"]["resource"] = {"id": [resource_id(model)]}
        page = self._post("/events/filter", body) or {}
        out = list(page.get("events") or [])
        nxt = page.get("next_page")
        while nxt:
            status, text = stack.http_get(nxt, timeout=15.0)
            if status != 200:
                break
            page = json.loads(text)
            out += page.get("events") or []
            nxt = page.get("next_page")
        return out
