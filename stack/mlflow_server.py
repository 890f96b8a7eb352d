"""The MLflow tracking server (`mlflow server` has no background mode: we supervise it)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from stack.net import HOST, ensure_port_free, redact
from stack.postgres import mlflow_pg_url
from stack.services import DEFAULT_START_TIMEOUT, Service, bin_path, spawn


def _artifacts_uri(artifacts_destination: Path | str) -> str:
    """A local directory becomes an absolute file:// URI (created); other URIs pass through."""
    dest = str(artifacts_destination)
    if "://" in dest:
        return dest
    Path(dest).mkdir(parents=True, exist_ok=True)
    return Path(dest).resolve().as_uri()


def start_mlflow_server(
    port: int,
    *,
    backend_store_uri: str,
    artifacts_destination: Path | str,
    log_path: Path | str,
    env: Mapping[str, str] | None = None,
    workers: int = 1,
    timeout: float = DEFAULT_START_TIMEOUT,
    port_setting: str | None = "EVERGREEN_MLFLOW_PORT",
    wait: bool = True,
    die_with_parent: bool = False,
    app_name: str | None = None,
) -> Service:
    """`mlflow server` on 127.0.0.1:port with proxied artifacts under `artifacts_destination`.

    `backend_store_uri`: sqlite:///abs/path.db or postgresql://user@host:port/db.
    `app_name`: e.g. "basic-auth" (its config and admin bootstrap come from `env`: stack/auth.py).
    """
    ensure_port_free(port, setting=port_setting, service="MLflow server")
    backend_store_uri = mlflow_pg_url(backend_store_uri)
    dest = _artifacts_uri(artifacts_destination)
    menv = dict(os.environ if env is None else env)
    menv.pop("MLFLOW_TRACKING_URI", None)
    # The GenAI job runner (huey consumers: 8 more processes) doubles start-up time and memory;
    # tabular training does not use it. Export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true to keep it.
    menv.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    cmd = [bin_path("mlflow"), "server", "--host", HOST, "--port", str(port), "--workers", str(workers)]
    cmd += ["--backend-store-uri", backend_store_uri, "--serve-artifacts", "--artifacts-destination", dest]
    if app_name:
        cmd += ["--app-name", app_name]
    svc = spawn("mlflow-server", cmd, log_path=Path(log_path), env=menv, die_with_parent=die_with_parent)
    svc.cmd = [redact(c) if "://" in c else c for c in cmd]  # no password in stack.json
    svc.port = port
    svc.url = f"http://{HOST}:{port}"
    svc.health_url = f"{svc.url}/health"
    svc.extra = {
        "backend_store_uri": redact(backend_store_uri),
        "artifacts_destination": dest,
        "auth": app_name == "basic-auth",
    }
    if wait:
        svc.wait_healthy(timeout)
    return svc
