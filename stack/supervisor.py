"""Start, check and stop the local stack: Prefect server, MLflow tracking server, Prefect process worker.

Pure subprocess + HTTP code (no prefect import), shared by `evergreen up/status/down` and the test
fixtures in `tests/conftest.py`.

- Every service is started in its own session (process group), with stdout+stderr in a log file.
- Stopping is by PID: SIGTERM to the process group and to every descendant found beforehand
  (the process worker may start flow runs in their own sessions), then SIGKILL after a grace period.
- A PID recorded in a state file is only signalled when its start time still matches, so a
  recycled PID is never killed.
- Health checks time out with an error that carries the tail of the service's log.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_START_TIMEOUT = 120.0
DEFAULT_STOP_TIMEOUT = 15.0


# --------------------------------------------------------------------------------------------- errors


class StackError(RuntimeError):
    """A service could not be started, checked or stopped."""


class PortInUseError(StackError):
    """A requested port is already bound by another process."""

    def __init__(self, port: int, setting: str | None = None, service: str | None = None) -> None:
        self.port = port
        self.setting = setting
        self.service = service
        what = f" for {service}" if service else ""
        hint = f"; set {setting} to another port (e.g. {setting}={port + 1})" if setting else ""
        super().__init__(f"port {port} on {HOST}{what} is already in use{hint}")


class StartupError(StackError):
    """A service exited or did not become healthy in time."""


# ---------------------------------------------------------------------------------------------- ports


def free_port(host: str = HOST) -> int:
    """A currently free TCP port on `host` (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_in_use(port: int, host: str = HOST) -> bool:
    """True when something listens on host:port, or the port cannot be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        if s.connect_ex((host, port)) == 0:
            return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # like the servers themselves: TIME_WAIT leftovers do not block, a listener does
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def ensure_port_free(port: int, setting: str | None = None, service: str | None = None) -> None:
    if port_in_use(port):
        raise PortInUseError(port, setting=setting, service=service)


def wait_port_free(port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not port_in_use(port):
            return True
        time.sleep(0.2)
    return not port_in_use(port)


# -------------------------------------------------------------------------------------------- helpers


def tail(path: Path | str | None, lines: int = 40) -> str:
    """Last `lines` lines of a log file ('' when missing)."""
    if not path:
        return ""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64_000))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def http_get(url: str, timeout: float = 3.0) -> tuple[int, str]:
    """(status, body) for a GET; status 0 when the connection fails."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback URLs)
            return resp.status, resp.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except (urllib.error.URLError, OSError, TimeoutError):
        return 0, ""


def http_post_json(url: str, payload: object, timeout: float = 5.0) -> tuple[int, object]:
    data = json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            body = resp.read().decode("utf-8", errors="replace")
            return resp.status, json.loads(body) if body else None
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (urllib.error.URLError, OSError, TimeoutError, ValueError):
        return 0, None


def _bin(name: str) -> str:
    """The console script `name` next to this interpreter (the venv), else on PATH."""
    cand = Path(sys.executable).parent / name
    return str(cand) if cand.exists() else name


def process_start_time(pid: int) -> float | None:
    """Kernel start time of `pid` (clock ticks since boot) or None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode()
        # comm may contain spaces/parens: fields after the last ')'
        rest = stat[stat.rindex(")") + 2 :].split()
        return float(rest[19])
    except (OSError, ValueError, IndexError):
        try:
            import psutil

            return float(psutil.Process(pid).create_time())
        except Exception:  # noqa: BLE001
            return None


def pid_alive(pid: int, start_time: float | None = None) -> bool:
    """True when `pid` runs (not a zombie) and, if given, started at `start_time`."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode()
        if stat[stat.rindex(")") + 2 :].split()[0] == "Z":
            _reap(pid)
            return False
    except OSError:
        pass
    if start_time is not None:
        now = process_start_time(pid)
        if now is None or abs(now - start_time) > 1e-6:
            return False
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def descendants(pid: int) -> list[int]:
    """PIDs of all descendants of `pid` (children first-level and deeper)."""
    try:
        import psutil

        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except Exception:  # noqa: BLE001 (psutil missing or process gone)
        pass
    # /proc fallback
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        except (OSError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


# ------------------------------------------------------------------------------------------- services


@dataclass
class Service:
    """One started process. Serialisable to the state file (`to_dict` / `from_dict`)."""

    name: str
    pid: int
    log_path: str
    cmd: list[str]
    port: int | None = None
    url: str | None = None
    health_url: str | None = None
    start_time: float | None = None  # kernel start time of pid, guards against PID reuse
    startup_seconds: float | None = None  # spawn -> healthy
    spawned_at: float | None = None  # epoch seconds
    extra: dict[str, object] = field(default_factory=dict)
    _proc: subprocess.Popen | None = field(default=None, repr=False, compare=False)
    _probe: Callable[[], bool] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, object]:
        return {
            k: copy.deepcopy(getattr(self, k)) for k in self.__dataclass_fields__ if not k.startswith("_")
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> Service:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__ and not k.startswith("_")}
        return cls(**known)  # type: ignore[arg-type]

    def alive(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            return False
        return pid_alive(self.pid, self.start_time)

    def healthy(self, timeout: float = 3.0) -> bool:
        if not self.alive():
            return False
        if self.health_url is None:
            return True
        status, _ = http_get(self.health_url, timeout=timeout)
        return status == 200

    def wait_healthy(self, timeout: float = DEFAULT_START_TIMEOUT) -> float:
        """Block until healthy (see `wait_healthy`); stops the process and re-raises on failure."""
        try:
            self.startup_seconds = wait_healthy(self, timeout=timeout, check=self._probe)
        except BaseException:
            self.stop()
            raise
        return self.startup_seconds

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> bool:
        """Stop this service and its children. True when something was running."""
        return stop_pid(self.pid, start_time=self.start_time, timeout=timeout, proc=self._proc)


def spawn(
    name: str,
    cmd: list[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    die_with_parent: bool = False,
) -> Service:
    """Start `cmd` in its own session with stdout/stderr appended to `log_path`.

    `die_with_parent`: the kernel sends SIGTERM to the process when its parent dies, even by SIGKILL
    (Linux `setpriv --pdeathsig`; the PID stays the same). For test fixtures, not for `evergreen up`.
    """
    if die_with_parent and sys.platform.startswith("linux"):
        import shutil

        setpriv = shutil.which("setpriv")
        if setpriv:
            cmd = [setpriv, "--pdeathsig", "TERM", "--", *cmd]
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ if env is None else env)
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    with open(log_path, "ab") as log:
        log.write(
            f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} start: {' '.join(_redact(c) if '://' in c else c for c in cmd)}\n".encode()
        )
        log.flush()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=str(cwd) if cwd else None,
            start_new_session=True,
            close_fds=True,
        )
    svc = Service(
        name=name, pid=proc.pid, log_path=str(log_path), cmd=list(cmd), _proc=proc, spawned_at=time.time()
    )
    svc.start_time = process_start_time(proc.pid)
    return svc


def wait_healthy(
    svc: Service,
    timeout: float = DEFAULT_START_TIMEOUT,
    check: Callable[[], bool] | None = None,
    interval: float = 0.25,
) -> float:
    """Block until `check()` (default: GET health_url == 200). Returns seconds since spawn.

    Raises StartupError, with the log tail, when the process exits or the timeout passes.
    """
    t0 = time.monotonic()
    deadline = t0 + timeout
    probe = check or (lambda: http_get(svc.health_url, timeout=2.0)[0] == 200 if svc.health_url else True)
    while True:
        if not svc.alive():
            code = svc._proc.poll() if svc._proc is not None else None
            raise StartupError(
                f"{svc.name} (pid {svc.pid}) exited with code {code} before becoming healthy; "
                f"log {svc.log_path}:\n{svc.log_tail()}"
            )
        if probe():
            return time.time() - svc.spawned_at if svc.spawned_at else time.monotonic() - t0
        if time.monotonic() > deadline:
            raise StartupError(
                f"{svc.name} (pid {svc.pid}) not healthy after {timeout:.0f}s"
                f" ({svc.health_url or 'custom check'}); log {svc.log_path}:\n{svc.log_tail()}"
            )
        time.sleep(interval)


def stop_pid(
    pid: int,
    *,
    start_time: float | None = None,
    timeout: float = DEFAULT_STOP_TIMEOUT,
    proc: subprocess.Popen | None = None,
) -> bool:
    """SIGTERM the process group led by `pid` plus all its descendants; SIGKILL after `timeout`.

    Returns False (and signals nothing) when `pid` is gone or, with `start_time`, is another process.
    """
    if not pid_alive(pid, start_time):
        if proc is not None:
            with contextlib.suppress(Exception):
                proc.wait(timeout=0.1)
        return False
    kids = descendants(pid)
    kid_starts = {k: process_start_time(k) for k in kids}

    def signal_all(sig: int) -> None:
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        for k in kids:
            if pid_alive(k, kid_starts[k]):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(k, sig)

    def remaining() -> list[int]:
        if proc is not None:
            proc.poll()
        else:
            _reap(pid)
        left = [p for p in [pid, *kids] if pid_alive(p, kid_starts.get(p, start_time))]
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, 0)  # group members we may not have seen as descendants
            if pid not in left and _group_members(pid):
                left.append(-pid)
        return left

    signal_all(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while remaining() and time.monotonic() < deadline:
        time.sleep(0.1)
    if remaining():
        logger.warning("pid %s did not stop after SIGTERM within %.0fs; sending SIGKILL", pid, timeout)
        signal_all(signal.SIGKILL)
        deadline = time.monotonic() + 5
        while remaining() and time.monotonic() < deadline:
            time.sleep(0.1)
    if proc is not None:
        with contextlib.suppress(Exception):
            proc.wait(timeout=1)
    left = remaining()
    if left:
        raise StackError(f"could not stop pid {pid}; still running: {left}")
    return True


def _group_members(pgid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                out.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return out


# ---------------------------------------------------------------------------------------- Prefect


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
    """`prefect server start` on 127.0.0.1:port; SQLite under `home` unless `database_url`.

    `database_url` is a SQLAlchemy async URL, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/db
    (the database needs the pg_trgm extension; see `create_postgres_database`).
    """
    ensure_port_free(port, setting=port_setting, service="Prefect server")
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    base = dict(os.environ if env is None else env)
    # never inherit a client API URL or a DB URL meant for some other server
    base.pop("PREFECT_API_URL", None)
    if not database_url:
        base.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
    penv = prefect_env(home=home, database_url=database_url, base=base)
    penv["PREFECT_SERVER_API_HOST"] = HOST
    penv["PREFECT_SERVER_API_PORT"] = str(port)
    penv.setdefault("PREFECT_UI_API_URL", f"http://{HOST}:{port}/api")
    cmd = [_bin("prefect"), "server", "start", "--host", HOST, "--port", str(port)]
    svc = spawn(
        "prefect-server",
        cmd,
        log_path=Path(log_path or home / "prefect-server.log"),
        env=penv,
        die_with_parent=die_with_parent,
    )
    svc.port = port
    svc.url = f"http://{HOST}:{port}"
    svc.health_url = f"{svc.url}/api/health"
    svc.extra = {
        "api_url": f"{svc.url}/api",
        "home": str(home),
        "database": _redact(database_url or "sqlite"),
    }
    if wait:
        svc.wait_healthy(timeout)
    return svc


def create_work_pool(
    api_url: str, name: str, *, env: Mapping[str, str] | None = None, timeout: float = 60
) -> bool:
    """Create a `process` work pool if missing. True when it was created, False when it existed."""
    status, _ = http_get(f"{api_url}/work_pools/{name}")
    if status == 200:
        return False
    penv = prefect_env(api_url=api_url, base=env)
    res = subprocess.run(
        [_bin("prefect"), "work-pool", "create", name, "--type", "process"],
        env=penv,
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
    status, body = http_post_json(f"{api_url}/work_pools/{pool}/workers/filter", {})
    if status != 200 or not isinstance(body, list):
        return False
    return any(w.get("name") == worker_name and w.get("status", "ONLINE") == "ONLINE" for w in body)


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
) -> Service:
    """A `process` worker polling `pool` every `query_seconds`; healthy once it heartbeats to the API.

    `env` is the base environment of the worker, inherited by every flow run it starts
    (MLFLOW_TRACKING_URI, EVERGREEN_HOME, ...).
    """
    if create_pool:
        create_work_pool(api_url, pool, env=env)
    name = name or f"evergreen-worker-{uuid.uuid4().hex[:8]}"
    penv = prefect_env(api_url=api_url, base=env)
    penv["PREFECT_WORKER_QUERY_SECONDS"] = str(query_seconds)
    penv["PREFECT_WORKER_HEARTBEAT_SECONDS"] = str(max(2.0, query_seconds))
    penv["PREFECT_WORKER_PREFETCH_SECONDS"] = penv.get("PREFECT_WORKER_PREFETCH_SECONDS", "5")
    penv.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
    cmd = [_bin("prefect"), "worker", "start", "--pool", pool, "--name", name, "--type", "process"]
    cmd += ["--install-policy", "never"]
    svc = spawn(
        "prefect-worker", cmd, log_path=Path(log_path), env=penv, cwd=cwd, die_with_parent=die_with_parent
    )
    svc.extra = {"pool": pool, "worker_name": name, "api_url": api_url, "cwd": str(cwd or os.getcwd())}
    svc._probe = lambda: worker_online(api_url, pool, name)
    if wait:
        svc.wait_healthy(timeout)
    return svc


# ------------------------------------------------------------------------------------------- MLflow


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
) -> Service:
    """`mlflow server` on 127.0.0.1:port with proxied artifacts under `artifacts_destination`.

    `backend_store_uri`: sqlite:///abs/path.db or postgresql://user@host:port/db.
    """
    ensure_port_free(port, setting=port_setting, service="MLflow server")
    backend_store_uri = mlflow_pg_url(backend_store_uri)
    dest = str(artifacts_destination)
    if "://" not in dest:
        Path(dest).mkdir(parents=True, exist_ok=True)
        dest = Path(dest).resolve().as_uri()
    menv = dict(os.environ if env is None else env)
    menv.pop("MLFLOW_TRACKING_URI", None)
    # The GenAI job runner (huey consumers: 8 more processes) doubles start-up time and memory;
    # tabular training does not use it. Export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true to keep it.
    menv.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    cmd = [
        _bin("mlflow"),
        "server",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--backend-store-uri",
        backend_store_uri,
        "--serve-artifacts",
        "--artifacts-destination",
        dest,
    ]
    svc = spawn("mlflow-server", cmd, log_path=Path(log_path), env=menv, die_with_parent=die_with_parent)
    svc.cmd = [_redact(c) if "://" in c else c for c in cmd]  # no password in stack.json
    svc.port = port
    svc.url = f"http://{HOST}:{port}"
    svc.health_url = f"{svc.url}/health"
    svc.extra = {"backend_store_uri": _redact(backend_store_uri), "artifacts_destination": dest}
    if wait:
        svc.wait_healthy(timeout)
    return svc


def _redact(url: str) -> str:
    """Hide a password in a URL (user:pw@host -> user:***@host)."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            creds = creds.split(":", 1)[0] + ":***"
        return f"{scheme}://{creds}@{host}"
    return url


# ---------------------------------------------------------------------------------------- PostgreSQL


def _pg_admin_connect(admin_dsn: str):
    import psycopg2

    conn = psycopg2.connect(admin_dsn)
    conn.autocommit = True
    return conn


def create_postgres_database(
    name: str,
    *,
    admin_dsn: str = "postgresql://postgres@127.0.0.1:5432/postgres",
    extensions: tuple[str, ...] = ("pg_trgm",),
) -> None:
    """CREATE DATABASE `name` (if missing) and the extensions Prefect needs."""
    from psycopg2 import sql

    conn = _pg_admin_connect(admin_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()
    db_dsn = admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    conn = _pg_admin_connect(db_dsn)
    try:
        with conn.cursor() as cur:
            for ext in extensions:
                cur.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(ext)))
    finally:
        conn.close()


def drop_postgres_database(
    name: str, *, admin_dsn: str = "postgresql://postgres@127.0.0.1:5432/postgres"
) -> None:
    from psycopg2 import sql

    conn = _pg_admin_connect(admin_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        conn.close()


def asyncpg_url(dsn: str) -> str:
    """postgresql://... -> postgresql+asyncpg://... (what Prefect's server wants)."""
    for prefix in ("postgresql+psycopg2://", "postgresql+asyncpg://", "postgresql://", "postgres://"):
        if dsn.startswith(prefix):
            return "postgresql+asyncpg://" + dsn[len(prefix) :]
    return dsn


def sync_pg_url(dsn: str) -> str:
    """postgresql+asyncpg://... -> postgresql://... (a libpq URL, for psycopg2.connect)."""
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg2://", "postgres://"):
        if dsn.startswith(prefix):
            return "postgresql://" + dsn[len(prefix) :]
    return dsn


def mlflow_pg_url(dsn: str) -> str:
    """A PostgreSQL URL with the psycopg2 driver spelled out (SQLAlchemy 2.1 defaults to psycopg 3,
    which is not installed); other URLs unchanged."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if dsn.startswith(prefix):
            return "postgresql+psycopg2://" + dsn[len(prefix) :]
    return dsn
