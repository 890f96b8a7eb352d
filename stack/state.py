"""The state file of `evergreen up` (``<home>/stack.json``) and the lock that serialises up/down."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stack.errors import StackBusyError
from stack.services import Service

STATE_FILE = "stack.json"
LOCK_FILE = "stack.lock"
ORDER = ("prefect-server", "mlflow-server", "prefect-worker")  # start order; stop in reverse


def state_path(home: Path) -> Path:
    return home / STATE_FILE


def load_state(home: Path) -> dict[str, Any]:
    """The recorded state, or {} when there is none (or it is unreadable)."""
    p = state_path(home)
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {}


def save_state(home: Path, state: dict[str, Any]) -> None:
    """Write atomically (temp file + rename): a crash never leaves half a state file."""
    home.mkdir(parents=True, exist_ok=True)
    tmp = state_path(home).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True, default=str))
    tmp.replace(state_path(home))


def services_from_state(state: dict[str, Any]) -> dict[str, Service]:
    return {name: Service.from_dict(d) for name, d in (state.get("services") or {}).items()}


def state_doc(
    home: Path, project_root: Path | None, services: dict[str, Service], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The document `up` records: every service in start order, plus `extra` keys."""
    st: dict[str, Any] = {
        "version": 1,
        "home": str(home),
        "project_root": str(project_root) if project_root else None,
        "services": {n: services[n].to_dict() for n in ORDER if n in services},
        "updated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    st.update(extra or {})
    return st


@contextlib.contextmanager
def stack_lock(home: Path, timeout: float = 2.0) -> Iterator[None]:
    """Hold ``<home>/stack.lock``; StackBusyError when another up/down holds it for `timeout` s."""
    from filelock import FileLock, Timeout

    home.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(home / LOCK_FILE))
    try:
        lock.acquire(timeout=timeout)
    except Timeout as exc:
        raise StackBusyError(
            f"another `evergreen up`/`down` is running on {home} ({home / LOCK_FILE})"
        ) from exc
    try:
        yield
    finally:
        lock.release()
