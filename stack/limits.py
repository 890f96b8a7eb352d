"""Global concurrency limits the automations and flows rely on, created by `evergreen up` (idempotent).

- ``evergreen-training`` (1 slot): wrap CPU-heavy training in ``with concurrency("evergreen-training")``
  so a burst of triggers does not oversubscribe a small machine.
- ``evergreen-retrain-<model>`` (1 slot, one per ``models/*.yaml``): a per-model mutex. A deployment's
  ``concurrency_limit`` applies per deployment, not per model, so two deployments (drift trigger,
  schedule) could otherwise retrain the same model at once.

Existing limits are left as they are (an operator may have tuned them in the UI).
Pure HTTP against the Prefect REST API; no prefect import.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stack.auth import prefect_headers
from stack.errors import StackError
from stack.net import http_get, http_post_json

TRAINING_LIMIT = "evergreen-training"


def retrain_limit_name(model: str) -> str:
    return f"evergreen-retrain-{model}"


@dataclass(frozen=True)
class Limit:
    name: str
    limit: int
    slot_decay_per_second: float = 0.0


def desired_limits(models_dir: Path | None) -> list[Limit]:
    limits = [Limit(TRAINING_LIMIT, 1)]
    if models_dir is not None and Path(models_dir).is_dir():
        for spec in sorted(Path(models_dir).glob("*.y*ml")):
            limits.append(Limit(retrain_limit_name(spec.stem), 1))
    return limits


def ensure_limits(api_url: str, limits: list[Limit]) -> dict[str, str]:
    """Create the missing limits. Returns {name: "created" | "exists"}."""
    out: dict[str, str] = {}
    auth = prefect_headers()  # PREFECT_API_AUTH_STRING when the server has auth on
    for lim in limits:
        status, _ = http_get(f"{api_url}/v2/concurrency_limits/{lim.name}", headers=auth)
        if status == 200:
            out[lim.name] = "exists"
            continue
        status, _ = http_post_json(
            f"{api_url}/v2/concurrency_limits/",
            {
                "name": lim.name,
                "limit": lim.limit,
                "active": True,
                "slot_decay_per_second": lim.slot_decay_per_second,
            },
            headers=auth,
        )
        if status in (200, 201):
            out[lim.name] = "created"
        elif status == 409:
            out[lim.name] = "exists"
        else:
            raise StackError(f"creating concurrency limit {lim.name!r} failed: HTTP {status}")
    return out
