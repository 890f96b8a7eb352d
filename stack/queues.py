"""The work pool's queues and their priorities, created by `evergreen up` (idempotent).

``deployments.render.work_queues()`` names them: ``default`` (monitor, ingest) first, then
``retrain-p1`` .. ``retrain-p5`` (a spec's trigger or schedule ``priority``). Prefect orders a pool's
queues by a unique ``priority`` (lower first) and, when the pool or a queue has fewer free slots than
scheduled runs, hands a worker the runs of the lowest-numbered queue first. `prefect deploy` would
create a missing queue with the next free priority, so this runs before the deploy and also fixes
the priority of a queue that exists (Prefect renumbers the others to keep the order).

Pure HTTP against the Prefect REST API; no prefect import.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from urllib.parse import quote

from stack.auth import prefect_headers
from stack.errors import StackError


def _headers() -> dict[str, str]:
    """JSON, plus basic auth (PREFECT_API_AUTH_STRING) when the server has auth on."""
    return {"Content-Type": "application/json", **prefect_headers()}


# A busy server answers 503 (its database timed out) or drops the connection (0): worth a few retries.
TRANSIENT = {0, 429, 502, 503, 504}
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)


def _call(method: str, url: str, payload: object | None = None, timeout: float = 10.0) -> tuple[int, object]:
    """One API call, retried with backoff on a transient answer; (status, JSON body or None)."""
    status, body = _call_once(method, url, payload, timeout)
    for delay in RETRY_DELAYS:
        if status not in TRANSIENT:
            break
        time.sleep(delay)
        status, body = _call_once(method, url, payload, timeout)
    return status, body


def _call_once(method: str, url: str, payload: object | None, timeout: float) -> tuple[int, object]:
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, headers=_headers(), method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (the stack's own API)
            body = resp.read().decode("utf-8", errors="replace")
            return resp.status, json.loads(body) if body else None
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (urllib.error.URLError, OSError, ValueError):
        return 0, None


def ensure_work_queues(api_url: str, pool: str, queues: Sequence[tuple[str, int]]) -> dict[str, str]:
    """Create or re-prioritise `queues` [(name, priority)] in `pool`, in the order given.

    Returns {name: "created" | "exists" | "priority N -> M"}; StackError when the API refuses.
    """
    base = f"{api_url}/work_pools/{quote(pool)}/queues"
    out: dict[str, str] = {}
    for name, priority in queues:
        status, body = _call("GET", f"{base}/{quote(name)}")
        if status == 404:
            status, _ = _call("POST", base, {"name": name, "priority": priority})
            # 409: an earlier attempt that timed out on our side did create it
            if status not in (200, 201, 409):
                raise StackError(f"creating work queue {name!r} in pool {pool!r} failed: HTTP {status}")
            out[name] = "created"
            continue
        if status != 200 or not isinstance(body, dict):
            raise StackError(f"reading work queue {name!r} of pool {pool!r} failed: HTTP {status}")
        if body.get("priority") == priority:
            out[name] = "exists"
            continue
        status, _ = _call("PATCH", f"{base}/{quote(name)}", {"priority": priority})
        if status not in (200, 204):
            raise StackError(f"setting the priority of work queue {name!r} failed: HTTP {status}")
        out[name] = f"priority {body.get('priority')} -> {priority}"
    return out


def queue_priorities(api_url: str, pool: str) -> dict[str, int]:
    """{queue name: priority} of every queue in `pool` (for `evergreen status` and tests)."""
    status, body = _call("POST", f"{api_url}/work_pools/{quote(pool)}/queues/filter", {})
    if status != 200 or not isinstance(body, list):
        raise StackError(f"listing the work queues of pool {pool!r} failed: HTTP {status}")
    return {q["name"]: int(q["priority"]) for q in body}
