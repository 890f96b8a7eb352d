"""The Prefect worker and its work pool (the worker has no background mode: we supervise it).

The worker type is `evergreen-process` (workers/prefork.py: Prefect's process worker, with flow runs
forked from a warm interpreter) unless the caller asks for Prefect's `process`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path

from stack.auth import prefect_headers
from stack.errors import StackError
from stack.net import http_get, http_post_json
from stack.prefect_server import prefect_env
from stack.services import DEFAULT_START_TIMEOUT, Service, bin_path, spawn

LAUNCH = Path(__file__).with_name("launch.py")
WORKER_TYPE = "evergreen-process"  # workers.prefork.WORKER_TYPE, without importing Prefect here
WORKER_TYPES = (WORKER_TYPE, "process")  # what EVERGREEN_WORKER_TYPE accepts (evergreen/settings.py)


def launch_cmd(*own: str) -> list[str]:
    """`python stack/launch.py OWN... --`: a `prefect` command that imports Prefect before it may run."""
    return [sys.executable, str(LAUNCH), *own, "--"]


def create_work_pool(
    api_url: str,
    name: str,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
    worker_type: str = WORKER_TYPE,
) -> bool:
    """Create a work pool of `worker_type` if missing. True when it was created, False when it existed."""
    status, _ = http_get(f"{api_url}/work_pools/{name}", headers=prefect_headers(env))
    if status == 200:
        return False
    res = subprocess.run(
        [bin_path("prefect"), "work-pool", "create", name, "--type", worker_type],
        env=prefect_env(api_url=api_url, base=env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if res.returncode != 0:
        if "already exists" in (res.stdout + res.stderr):
            return False
        raise StackError(
            f"creating work pool {name!r} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
        )
    return True


def worker_online(api_url: str, pool: str, worker_name: str) -> bool:
    """True once the worker `worker_name` has sent a heartbeat for `pool`."""
    status, body = http_post_json(
        f"{api_url}/work_pools/{pool}/workers/filter", {}, headers=prefect_headers()
    )
    if status != 200 or not isinstance(body, list):
        return False
    return any(w.get("name") == worker_name and w.get("status", "ONLINE") == "ONLINE" for w in body)


def worker_probe(svc: Service) -> None:
    """Give a worker `Service` (new or loaded from the state file) its health check: the heartbeat."""
    ex = svc.extra
    api_url, pool, name = str(ex.get("api_url")), str(ex.get("pool")), str(ex.get("worker_name"))
    svc._probe = lambda: worker_online(api_url, pool, name)


def start_prefect_worker(
    api_url: str,
    pool: str,
    *,
    log_path: Path | str,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    query_seconds: float = 1.0,
    name: str | None = None,
    create_pool: bool = True,
    timeout: float = DEFAULT_START_TIMEOUT,
    wait: bool = True,
    die_with_parent: bool = False,
    after_health: str | None = None,
    worker_type: str = WORKER_TYPE,
) -> Service:
    """A `worker_type` worker polling `pool` every `query_seconds`; healthy once it heartbeats to the API.

    `env` is the base environment of the worker, inherited by every flow run it starts
    (MLFLOW_TRACKING_URI, EVERGREEN_HOME, ...). `after_health`: a health URL of a server still
    starting; the worker process imports Prefect now and starts polling once that URL answers
    (stack/launch.py), so `create_pool` must be False then.
    """
    if create_pool:
        create_work_pool(api_url, pool, env=env, worker_type=worker_type)
    name = name or f"evergreen-worker-{uuid.uuid4().hex[:8]}"
    penv = prefect_env(api_url=api_url, base=env)
    penv["PREFECT_WORKER_QUERY_SECONDS"] = str(query_seconds)
    penv["PREFECT_WORKER_HEARTBEAT_SECONDS"] = str(max(2.0, query_seconds))
    penv["PREFECT_WORKER_PREFETCH_SECONDS"] = penv.get("PREFECT_WORKER_PREFETCH_SECONDS", "5")
    penv.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
    args = [
        "worker",
        "start",
        "--pool",
        pool,
        "--name",
        name,
        "--type",
        worker_type,
        "--install-policy",
        "never",
    ]
    cmd = [bin_path("prefect"), *args]
    if after_health is not None:
        cmd = [*launch_cmd("--after-health", after_health, "--timeout", str(int(timeout))), *args]
    svc = spawn(
        "prefect-worker", cmd, log_path=Path(log_path), env=penv, cwd=cwd, die_with_parent=die_with_parent
    )
    svc.extra = {"pool": pool, "worker_name": name, "api_url": api_url, "cwd": str(cwd or os.getcwd())}
    worker_probe(svc)
    if wait:
        svc.wait_healthy(timeout)
    return svc
