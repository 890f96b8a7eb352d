"""The local stack behind `evergreen up / status / down`.

`up` starts (or reuses) a Prefect server, an MLflow tracking server and a process worker, records
them in ``<EVERGREEN_HOME>/stack.json`` (PIDs with their kernel start times, ports, URLs, logs), creates
the work pool and concurrency limits, deploys ``prefect.yaml`` and writes ``<EVERGREEN_HOME>/stack.env``.
`down` stops exactly the recorded processes, by PID. Logs go to ``<EVERGREEN_HOME>/logs/``.

No prefect import: subprocesses and HTTP only. No printing: progress goes to a callback.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stack import limits as limits_mod
from stack import supervisor as stack
from stack.supervisor import Service, StackError

STATE_FILE = "stack.json"
ENV_FILE = "stack.env"
LOCK_FILE = "stack.lock"
ORDER = ("prefect-server", "mlflow-server", "prefect-worker")  # start order; stop in reverse

Progress = Callable[[str], None]


class StackBusyError(StackError):
    """Another `evergreen up`/`down` holds the stack lock."""


class DeployError(StackError):
    """`prefect deploy` failed (services stay up)."""


@dataclass
class StackConfig:
    home: Path
    prefect_port: int = 4200
    mlflow_port: int = 5000
    prefect_database_url: str | None = None  # SQLAlchemy async URL, None = SQLite under home/prefect
    mlflow_backend_uri: str | None = None
    mlflow_artifacts: str | None = None
    work_pool: str = "evergreen-pool"
    worker_query_seconds: float = 2.0
    project_root: Path | None = None
    models_dir: Path | None = None
    start_timeout: float = 240.0

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def prefect_home(self) -> Path:
        return self.home / "prefect"

    @property
    def mlflow_backend(self) -> str:
        uri = self.mlflow_backend_uri or f"sqlite:///{self.home / 'mlflow.db'}"
        return stack.mlflow_pg_url(uri)

    @property
    def mlflow_artifacts_destination(self) -> str:
        return self.mlflow_artifacts or str(self.home / "mlartifacts")

    @property
    def prefect_api_url(self) -> str:
        return f"http://{stack.HOST}:{self.prefect_port}/api"

    @property
    def mlflow_url(self) -> str:
        return f"http://{stack.HOST}:{self.mlflow_port}"

    @classmethod
    def from_settings(cls, settings=None) -> StackConfig:
        from evergreen.settings import get_settings

        s = settings or get_settings()
        db = s.database_url or os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL") or None
        root = find_project_root()
        models_dir = s.models_dir if s.models_dir.is_absolute() else (root / s.models_dir)
        return cls(
            home=s.home_abs,
            prefect_port=s.prefect_port,
            mlflow_port=s.mlflow_port,
            prefect_database_url=stack.asyncpg_url(db) if db else None,
            mlflow_backend_uri=s.mlflow_backend_uri,
            mlflow_artifacts=s.mlflow_artifacts_destination,
            work_pool=s.work_pool,
            worker_query_seconds=s.worker_query_seconds,
            project_root=root,
            models_dir=models_dir,
            start_timeout=s.stack_start_timeout,
        )


def find_project_root(start: Path | None = None) -> Path:
    """Nearest directory (from cwd up) holding prefect.yaml, else the one holding this package."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "prefect.yaml").is_file():
            return d
    return Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------------------------- state


def state_path(home: Path) -> Path:
    return home / STATE_FILE


def load_state(home: Path) -> dict:
    p = state_path(home)
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {}


def save_state(home: Path, state: dict) -> None:
    home.mkdir(parents=True, exist_ok=True)
    tmp = state_path(home).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True, default=str))
    tmp.replace(state_path(home))


def _services_from_state(state: dict) -> dict[str, Service]:
    return {name: Service.from_dict(d) for name, d in (state.get("services") or {}).items()}


@contextlib.contextmanager
def _lock(home: Path, timeout: float = 2.0):
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


# ----------------------------------------------------------------------------------------------- env


def client_env(cfg: StackConfig, prefect_api_url: str, mlflow_url: str) -> dict[str, str]:
    """What a user's shell, the worker and its flow runs need to talk to this stack."""
    return {
        "PREFECT_API_URL": prefect_api_url,
        "MLFLOW_TRACKING_URI": mlflow_url,
        "EVERGREEN_MLFLOW_TRACKING_URI": mlflow_url,
        "EVERGREEN_HOME": str(cfg.home),
        "EVERGREEN_WORK_POOL": cfg.work_pool,
        "EVERGREEN_PROJECT_DIR": str(cfg.project_root or Path.cwd()),
    }


def _child_env(cfg: StackConfig, extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    env["PREFECT_HOME"] = str(cfg.prefect_home)
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    return env


def write_env_file(cfg: StackConfig, env: dict[str, str]) -> Path:
    path = cfg.home / ENV_FILE
    lines = ["# written by `evergreen up`; use with: source " + str(path)]
    lines += [f"export {k}={v}" for k, v in env.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


# ------------------------------------------------------------------------------------------ postgres


def ensure_pg_database(url: str, extensions: tuple[str, ...] = ()) -> bool:
    """Create the database named in a postgresql URL when missing (plus extensions). True if created."""
    from sqlalchemy.engine import make_url

    u = make_url(stack.sync_pg_url(url))
    if not u.drivername.startswith("postgresql") or not u.database:
        return False
    admin = u.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    try:
        import psycopg2

        conn = psycopg2.connect(admin, connect_timeout=5)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (u.database,))
            exists = cur.fetchone() is not None
        conn.close()
    except Exception as exc:  # noqa: BLE001
        raise StackError(f"cannot reach PostgreSQL at {stack._redact(str(u))}: {exc}") from exc
    if not exists:
        stack.create_postgres_database(u.database, admin_dsn=admin, extensions=extensions)
        return True
    if extensions:
        with contextlib.suppress(Exception):
            stack.create_postgres_database(u.database, admin_dsn=admin, extensions=extensions)
    return False


# ------------------------------------------------------------------------------------------------ up


def _noop(_: str) -> None:
    return None


def up(cfg: StackConfig, *, deploy: bool = True, progress: Progress = _noop) -> dict:
    """Start or reuse every service, deploy, and return the recorded state (plus `actions`)."""
    cfg.home.mkdir(parents=True, exist_ok=True)
    cfg.logs_dir.mkdir(parents=True, exist_ok=True)
    with _lock(cfg.home):
        return _up_locked(cfg, deploy=deploy, progress=progress)


def _up_locked(cfg: StackConfig, *, deploy: bool, progress: Progress) -> dict:
    t_start = time.monotonic()
    state = load_state(cfg.home)
    old = _services_from_state(state)
    running: dict[str, Service] = {n: s for n, s in old.items() if s.alive()}
    for n in set(old) - set(running):
        progress(f"{n}: recorded pid {old[n].pid} is gone; starting a new one")
    actions: dict[str, str] = {n: "reused" for n in running}

    # 1. every port we are about to bind, before starting anything
    if "prefect-server" not in running:
        stack.ensure_port_free(cfg.prefect_port, "EVERGREEN_PREFECT_PORT", "Prefect server")
    if "mlflow-server" not in running:
        stack.ensure_port_free(cfg.mlflow_port, "EVERGREEN_MLFLOW_PORT", "MLflow server")
    for n, svc in running.items():
        want = {"prefect-server": cfg.prefect_port, "mlflow-server": cfg.mlflow_port}.get(n)
        if want is not None and svc.port != want:
            progress(
                f"{n}: already running on port {svc.port}; requested port {want} ignored (run `down` first)"
            )

    started: list[Service] = []
    services: dict[str, Service] = dict(running)

    def record(extra: dict | None = None) -> dict:
        st = {
            "version": 1,
            "home": str(cfg.home),
            "project_root": str(cfg.project_root) if cfg.project_root else None,
            "services": {n: services[n].to_dict() for n in ORDER if n in services},
            "updated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        st.update(extra or {})
        save_state(cfg.home, st)
        return st

    try:
        # 2. spawn servers (in parallel: health waits come later)
        if "prefect-server" not in services:
            pg = (cfg.prefect_database_url or "").startswith("postgresql")
            if pg and ensure_pg_database(str(cfg.prefect_database_url), extensions=("pg_trgm",)):
                progress("created the Prefect PostgreSQL database")
            progress(f"starting Prefect server on {stack.HOST}:{cfg.prefect_port}")
            svc = stack.start_prefect_server(
                cfg.prefect_port,
                cfg.prefect_home,
                database_url=cfg.prefect_database_url,
                log_path=cfg.logs_dir / "prefect-server.log",
                env=_child_env(cfg, {}),
                wait=False,
            )
            services["prefect-server"] = svc
            started.append(svc)
            actions["prefect-server"] = "started"
        if "mlflow-server" not in services:
            if cfg.mlflow_backend.startswith("postgres") and ensure_pg_database(cfg.mlflow_backend):
                progress("created the MLflow PostgreSQL database")
            progress(f"starting MLflow server on {stack.HOST}:{cfg.mlflow_port}")
            svc = stack.start_mlflow_server(
                cfg.mlflow_port,
                backend_store_uri=cfg.mlflow_backend,
                artifacts_destination=cfg.mlflow_artifacts_destination,
                log_path=cfg.logs_dir / "mlflow-server.log",
                env=_child_env(cfg, {}),
                wait=False,
            )
            services["mlflow-server"] = svc
            started.append(svc)
            actions["mlflow-server"] = "started"
        record()

        prefect_svc = services["prefect-server"]
        mlflow_svc = services["mlflow-server"]
        api_url = f"{prefect_svc.url}/api"
        env = client_env(cfg, api_url, mlflow_svc.url or cfg.mlflow_url)

        # 3. Prefect healthy -> limits, worker (creates the process pool if missing), deploy
        _wait(prefect_svc, cfg, progress)
        limit_actions = limits_mod.ensure_limits(api_url, limits_mod.desired_limits(cfg.models_dir))

        if "prefect-worker" not in services:
            progress(f"starting process worker for pool {cfg.work_pool!r}")
            svc = stack.start_prefect_worker(
                api_url,
                cfg.work_pool,
                log_path=cfg.logs_dir / "prefect-worker.log",
                cwd=cfg.project_root,
                env=_child_env(cfg, env),
                query_seconds=cfg.worker_query_seconds,
                name=f"evergreen-worker-{cfg.work_pool}",
                create_pool=False,  # `prefect worker start --type process` creates it: saves a CLI start
                wait=False,
            )
            services["prefect-worker"] = svc
            started.append(svc)
            actions["prefect-worker"] = "started"
            record()
        _wait(services["prefect-worker"], cfg, progress)  # the pool exists once the worker is online

        deploy_proc, deploy_info = _start_deploy(cfg, env, deploy, progress)

        # 4. MLflow healthy (it started in parallel), deploy finished
        _wait(mlflow_svc, cfg, progress)
        deploy_info = _finish_deploy(cfg, deploy_proc, deploy_info, progress)
    except BaseException:
        for svc in reversed(started):
            with contextlib.suppress(Exception):
                svc.stop()
            services = {n: s for n, s in services.items() if s is not svc}
        record({"error": "last `up` failed; see logs"})
        raise

    env_file = write_env_file(cfg, env)
    st = record(
        {
            "urls": {"prefect_ui": prefect_svc.url, "prefect_api": api_url, "mlflow_ui": mlflow_svc.url},
            "env": env,
            "env_file": str(env_file),
            "logs_dir": str(cfg.logs_dir),
            "work_pool": cfg.work_pool,
            "limits": limit_actions,
            "deploy": deploy_info,
        }
    )
    st["actions"] = actions
    st["up_seconds"] = round(time.monotonic() - t_start, 2)
    if deploy_info.get("status") == "failed":
        raise DeployError(
            f"`prefect deploy` failed (exit {deploy_info.get('returncode')}); services are up. "
            f"Log {deploy_info.get('log')}:\n{stack.tail(deploy_info.get('log'), 30)}"
        )
    return st


def _wait(svc: Service, cfg: StackConfig, progress: Progress) -> None:
    if svc._proc is None:  # reused: still give it time in case it is starting
        if svc.name == "prefect-worker" and svc._probe is None:
            ex = svc.extra
            svc._probe = lambda: stack.worker_online(
                str(ex["api_url"]), str(ex["pool"]), str(ex["worker_name"])
            )
        stack.wait_healthy(svc, timeout=cfg.start_timeout, check=svc._probe)
        return
    secs = svc.wait_healthy(cfg.start_timeout)
    progress(f"{svc.name} healthy after {secs:.1f}s (pid {svc.pid})")


def _start_deploy(
    cfg: StackConfig, env: dict[str, str], deploy: bool, progress: Progress
) -> tuple[subprocess.Popen | None, dict]:
    root = cfg.project_root
    if not deploy:
        return None, {"status": "skipped", "reason": "--no-deploy"}
    if root is None or not (root / "prefect.yaml").is_file():
        progress(f"warning: no prefect.yaml in {root}; skipping deploy")
        return None, {"status": "skipped", "reason": f"no prefect.yaml in {root}"}
    for pool in sorted(deployment_pools(root / "prefect.yaml") - {cfg.work_pool}):
        progress(
            f"warning: prefect.yaml deploys to work pool {pool!r} but the worker polls {cfg.work_pool!r} "
            "(EVERGREEN_WORK_POOL); those runs will wait for another worker"
        )
    log = cfg.logs_dir / "deploy.log"
    progress(f"deploying {root / 'prefect.yaml'} (log {log})")
    with open(log, "ab") as fh:
        fh.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} prefect --no-prompt deploy --all\n".encode())
        fh.flush()
        proc = subprocess.Popen(
            [stack._bin("prefect"), "--no-prompt", "deploy", "--all"],
            cwd=str(root),
            env=_child_env(cfg, env),
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc, {"status": "running", "log": str(log), "t0": time.monotonic()}


def deployment_pools(prefect_yaml: Path) -> set[str]:
    """Work pool names the deployments in a prefect.yaml use (templated names are skipped)."""
    import yaml

    try:
        doc = yaml.safe_load(prefect_yaml.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return set()
    pools = set()
    for dep in doc.get("deployments") or []:
        name = ((dep or {}).get("work_pool") or {}).get("name")
        if isinstance(name, str) and "{{" not in name:
            pools.add(name)
    return pools


def _finish_deploy(cfg: StackConfig, proc: subprocess.Popen | None, info: dict, progress: Progress) -> dict:
    if proc is None:
        return info
    t0 = info.pop("t0")
    try:
        rc = proc.wait(timeout=max(60.0, cfg.start_timeout * 2))
    except subprocess.TimeoutExpired:
        stack.stop_pid(proc.pid, proc=proc)
        rc = -1
    info.update({"returncode": rc, "seconds": round(time.monotonic() - t0, 2)})
    info["status"] = "deployed" if rc == 0 else "failed"
    progress(f"deploy {info['status']} in {info['seconds']:.1f}s")
    return info


# -------------------------------------------------------------------------------------------- status


def status(cfg: StackConfig) -> dict:
    state = load_state(cfg.home)
    services = _services_from_state(state)
    rows = []
    for name in ORDER:
        svc = services.get(name)
        if svc is None:
            rows.append({"name": name, "running": False, "healthy": False, "pid": None, "port": None})
            continue
        alive = svc.alive()
        if name == "prefect-worker":
            ex = svc.extra
            healthy = alive and stack.worker_online(
                str(ex.get("api_url")), str(ex.get("pool")), str(ex.get("worker_name"))
            )
        else:
            healthy = alive and svc.healthy()
        rows.append(
            {
                "name": name,
                "pid": svc.pid,
                "port": svc.port,
                "url": svc.url,
                "running": alive,
                "healthy": bool(healthy),
                "log": svc.log_path,
                "pool": svc.extra.get("pool") if name == "prefect-worker" else None,
            }
        )
    return {
        "home": str(cfg.home),
        "state_file": str(state_path(cfg.home)),
        "recorded": bool(services),
        "services": rows,
        "healthy": bool(services) and all(r["healthy"] for r in rows),
        "urls": state.get("urls", {}),
        "env": state.get("env", {}),
    }


# ---------------------------------------------------------------------------------------------- down


def down(
    cfg: StackConfig, *, progress: Progress = _noop, timeout: float = stack.DEFAULT_STOP_TIMEOUT
) -> dict:
    """Stop the recorded services (worker first), by PID; then forget them."""
    with _lock(cfg.home, timeout=30):
        state = load_state(cfg.home)
        services = _services_from_state(state)
        result = []
        errors = []
        for name in reversed(ORDER):
            svc = services.get(name)
            if svc is None:
                continue
            try:
                stopped = svc.stop(timeout=timeout)
                if svc.port:
                    stack.wait_port_free(svc.port, timeout=10)
                progress(f"{name}: {'stopped' if stopped else 'was not running'} (pid {svc.pid})")
                result.append({"name": name, "pid": svc.pid, "port": svc.port, "stopped": stopped})
                services.pop(name)
            except StackError as exc:
                errors.append(str(exc))
                result.append({"name": name, "pid": svc.pid, "port": svc.port, "error": str(exc)})
        if services:
            state["services"] = {n: s.to_dict() for n, s in services.items()}
            save_state(cfg.home, state)
        else:
            with contextlib.suppress(FileNotFoundError):
                state_path(cfg.home).unlink()
            with contextlib.suppress(FileNotFoundError):
                (cfg.home / ENV_FILE).unlink()
        out = {"home": str(cfg.home), "services": result, "errors": errors}
        if errors:
            raise StackError("; ".join(errors))
        return out
