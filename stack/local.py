"""The local stack behind `evergreen up / status / down` (`up` itself lives in stack/up.py).

`up` starts (or reuses) a Prefect server, an MLflow tracking server and a process worker, records
them in ``<EVERGREEN_HOME>/stack.json`` (PIDs with their kernel start times, ports, URLs, logs), creates
the work pool and concurrency limits, deploys ``prefect.yaml`` and writes ``<EVERGREEN_HOME>/stack.env``.
`down` stops exactly the recorded processes, by PID. Logs go to ``<EVERGREEN_HOME>/logs/``.

No prefect import: subprocesses and HTTP only. No printing: progress goes to a callback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from stack.config import ENV_FILE, StackConfig, client_env, find_project_root
from stack.deploy import deployment_pools
from stack.errors import DeployError, StackBusyError, StackError
from stack.net import wait_port_free
from stack.postgres import ensure_pg_database
from stack.prefect_worker import worker_online
from stack.processes import DEFAULT_STOP_TIMEOUT
from stack.services import Service
from stack.state import ORDER, STATE_FILE, load_state, save_state, services_from_state, stack_lock, state_path
from stack.up import up

__all__ = [
    "ENV_FILE",
    "ORDER",
    "STATE_FILE",
    "DeployError",
    "StackBusyError",
    "StackConfig",
    "client_env",
    "deployment_pools",
    "down",
    "ensure_pg_database",
    "find_project_root",
    "load_state",
    "save_state",
    "state_path",
    "status",
    "up",
]

Progress = Callable[[str], None]


def _noop(_: str) -> None:
    return None


# -------------------------------------------------------------------------------------------- status


def _status_row(name: str, svc: Service | None) -> dict[str, Any]:
    if svc is None:
        return {"name": name, "running": False, "healthy": False, "pid": None, "port": None}
    alive = svc.alive()
    if name == "prefect-worker":
        ex = svc.extra
        healthy = alive and worker_online(
            str(ex.get("api_url")), str(ex.get("pool")), str(ex.get("worker_name"))
        )
    else:
        healthy = alive and svc.healthy()
    return {
        "name": name,
        "pid": svc.pid,
        "port": svc.port,
        "url": svc.url,
        "running": alive,
        "healthy": bool(healthy),
        "log": svc.log_path,
        "pool": svc.extra.get("pool") if name == "prefect-worker" else None,
    }


def status(cfg: StackConfig) -> dict[str, Any]:
    """Each recorded service: PID, port, running, healthy (HTTP health or worker heartbeat)."""
    state = load_state(cfg.home)
    services = services_from_state(state)
    rows = [_status_row(name, services.get(name)) for name in ORDER]
    return {
        "home": str(cfg.home),
        "state_file": str(state_path(cfg.home)),
        "recorded": bool(services),
        "services": rows,
        "healthy": bool(services) and all(r["healthy"] for r in rows),
        "urls": state.get("urls", {}),
        "env": state.get("env", {}),
        "auth": state.get("auth", {"enabled": False}),
    }


# ---------------------------------------------------------------------------------------------- down


def _forget(cfg: StackConfig, state: dict[str, Any], services: dict[str, Service]) -> None:
    """Record what could not be stopped, or remove the state and env files when all stopped."""
    if services:
        state["services"] = {n: s.to_dict() for n, s in services.items()}
        save_state(cfg.home, state)
        return
    for path in (state_path(cfg.home), cfg.home / ENV_FILE):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def down(
    cfg: StackConfig, *, progress: Progress = _noop, timeout: float = DEFAULT_STOP_TIMEOUT
) -> dict[str, Any]:
    """Stop the recorded services (worker first), by PID; then forget them."""
    with stack_lock(cfg.home, timeout=30):
        state = load_state(cfg.home)
        services = services_from_state(state)
        result: list[dict[str, Any]] = []
        errors: list[str] = []
        for name in reversed(ORDER):
            svc = services.get(name)
            if svc is None:
                continue
            try:
                stopped = svc.stop(timeout=timeout)
                if svc.port:
                    wait_port_free(svc.port, timeout=10)
                progress(f"{name}: {'stopped' if stopped else 'was not running'} (pid {svc.pid})")
                result.append({"name": name, "pid": svc.pid, "port": svc.port, "stopped": stopped})
                services.pop(name)
            except StackError as exc:
                errors.append(str(exc))
                result.append({"name": name, "pid": svc.pid, "port": svc.port, "error": str(exc)})
        _forget(cfg, state, services)
        if errors:
            raise StackError("; ".join(errors))
        return {"home": str(cfg.home), "services": result, "errors": errors}
