"""The Prefect server: `prefect server start` in the foreground of a process we supervise.

Why not `prefect server start --background` / `prefect server stop` (Prefect 3.8): the background
mode pipes the server's stdout/stderr to the CLI process that exits right away (no log file, so a
failed start-up cannot be explained, and later writes hit a closed pipe), keeps the server in the
caller's process group, and has no health wait; `prefect server stop` sends one SIGTERM to one PID
without waiting, escalating, stopping children or checking that the PID was not recycled. What we
do take from the tool is its PID-file convention: the PID goes to ``$PREFECT_HOME/server.pid``, so
`prefect server stop` (with the same PREFECT_HOME) also stops a server that `evergreen up` started,
and a ``--background`` start in that home refuses to start a second server. See docs/stack.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from stack.net import HOST, ensure_port_free, redact
from stack.services import DEFAULT_START_TIMEOUT, Service, bin_path, spawn

PID_FILE = "server.pid"  # prefect.cli._server_utils.SERVER_PID_FILE_NAME


def prefect_env(
    api_url: str | None = None,
    home: Path | str | None = None,
    database_url: str | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Environment for Prefect CLI/server processes."""
    env = dict(os.environ if base is None else base)
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env.setdefault("PREFECT_CLI_COLORS", "false")
    env.setdefault("PREFECT_CLI_WRAP_LINES", "false")
    if home is not None:
        env["PREFECT_HOME"] = str(home)
    if api_url is not None:
        env["PREFECT_API_URL"] = api_url
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    return env


def _server_env(
    port: int, home: Path, database_url: str | None, env: Mapping[str, str] | None
) -> dict[str, str]:
    base = dict(os.environ if env is None else env)
    # never inherit a client API URL or a DB URL meant for some other server
    base.pop("PREFECT_API_URL", None)
    if not database_url:
        base.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
    penv = prefect_env(home=home, database_url=database_url, base=base)
    penv["PREFECT_SERVER_API_HOST"] = HOST
    penv["PREFECT_SERVER_API_PORT"] = str(port)
    penv.setdefault("PREFECT_UI_API_URL", f"http://{HOST}:{port}/api")
    return penv


def _auth_string(env: Mapping[str, str] | None) -> str | None:
    """The server auth string the server process gets (PREFECT_SERVER_API_AUTH_STRING), if any."""
    return dict(os.environ if env is None else env).get("PREFECT_SERVER_API_AUTH_STRING") or None


def start_prefect_server(
    port: int,
    home: Path | str,
    *,
    database_url: str | None = None,
    log_path: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_START_TIMEOUT,
    port_setting: str | None = "EVERGREEN_PREFECT_PORT",
    wait: bool = True,
    die_with_parent: bool = False,
) -> Service:
    """`prefect server start` on 127.0.0.1:port with PREFECT_HOME=`home`; SQLite there unless `database_url`.

    `database_url` is a SQLAlchemy async URL, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/db
    (the database needs the pg_trgm extension; see `stack.postgres.create_postgres_database`).
    Basic auth is on when `env` carries PREFECT_SERVER_API_AUTH_STRING (stack/auth.py).
    """
    ensure_port_free(port, setting=port_setting, service="Prefect server")
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    cmd = [bin_path("prefect"), "server", "start", "--host", HOST, "--port", str(port)]
    svc = spawn(
        "prefect-server",
        cmd,
        log_path=Path(log_path or home / "prefect-server.log"),
        env=_server_env(port, home, database_url, env),
        die_with_parent=die_with_parent,
    )
    pid_file = home / PID_FILE
    pid_file.write_text(str(svc.pid))
    svc.port = port
    svc.url = f"http://{HOST}:{port}"
    svc.health_url = f"{svc.url}/api/health"
    svc.extra = {
        "api_url": f"{svc.url}/api",
        "home": str(home),
        "database": redact(database_url or "sqlite"),
        "pid_file": str(pid_file),
        "auth": bool(_auth_string(env)),
    }
    if wait:
        svc.wait_healthy(timeout)
    return svc
