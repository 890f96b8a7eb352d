"""`evergreen up`: start or reuse the Prefect server, MLflow server and worker, then deploy.

Steps: reuse what the state file records and still runs; check every port before starting anything;
spawn both servers, the worker and a held `prefect deploy` at once (the worker and the deploy import
Prefect while the servers start: stack/launch.py; the worker starts polling once Prefect answers);
once Prefect answers, create the concurrency limits and start `evergreen notify apply` (its
automations do not depend on the deployments); once the worker is online (it creates the pool), create
the work queues and release the deploy, which runs while MLflow finishes starting. On any failure,
stop what this run started (services and the deploy and notify processes). No prefect import:
subprocesses and HTTP only. No printing: progress goes to a callback.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from deployments import work_queues
from stack import limits as limits_mod
from stack import queues as queues_mod
from stack.auth import (
    AUTH_DB_FILE,
    MIN_PASSWORD,
    MLFLOW_ADMIN_PASSWORD_VAR,
    MLFLOW_PASSWORD_VAR,
    AuthError,
    StackAuth,
    check_prefect,
    ensure_mlflow_user,
    without_server_secrets,
)
from stack.config import StackConfig, child_env, client_env, write_env_file
from stack.deploy import abort_deploy, finish_deploy, release_deploy, start_deploy
from stack.errors import DeployError, StartupError
from stack.mlflow_server import start_mlflow_server
from stack.net import HOST, ensure_port_free, http_get
from stack.notify import NotifyRun, finish_notifications, start_notifications, stop_notifications
from stack.postgres import ensure_pg_database
from stack.prefect_server import start_prefect_server
from stack.prefect_worker import start_prefect_worker, worker_probe
from stack.services import Service, tail, wait_healthy
from stack.state import load_state, save_state, services_from_state, stack_lock, state_doc

Progress = Callable[[str], None]
PORT_SETTINGS = {
    "prefect-server": ("EVERGREEN_PREFECT_PORT", "Prefect server"),
    "mlflow-server": ("EVERGREEN_MLFLOW_PORT", "MLflow server"),
}


def _noop(_: str) -> None:
    return None


@dataclass
class _Run:
    """One `up`: the services (reused + started), what was started (to undo on failure), the actions."""

    cfg: StackConfig
    progress: Progress
    services: dict[str, Service] = field(default_factory=dict)
    started: list[Service] = field(default_factory=list)
    actions: dict[str, str] = field(default_factory=dict)
    auth: StackAuth | None = None  # set when cfg.auth: the credentials, from the environment only
    deploy_proc: subprocess.Popen | None = None  # the `prefect deploy` this run started, if any
    notify_run: NotifyRun | None = None  # the `evergreen notify apply` this run started, if any

    @classmethod
    def from_state(cls, cfg: StackConfig, progress: Progress) -> _Run:
        """Reuse every recorded service that still runs; report the ones that are gone."""
        old = services_from_state(load_state(cfg.home))
        running = {n: s for n, s in old.items() if s.alive()}
        for n in sorted(set(old) - set(running)):
            progress(f"{n}: recorded pid {old[n].pid} is gone; starting a new one")
        return cls(cfg, progress, services=running, actions={n: "reused" for n in running})

    def server_env(self, extra: dict[str, str]) -> dict[str, str]:
        """A server's environment: its auth variables when auth is on, none inherited when it is off."""
        env = child_env(self.cfg, extra)
        return env if self.auth is not None else without_server_secrets(env)

    def client_env_with_secrets(self, env: dict[str, str]) -> dict[str, str]:
        """`env` plus the client credentials (worker, flow runs, deploy): process env only, never saved."""
        return {**env, **(self.auth.client_secrets() if self.auth is not None else {})}

    def port_of(self, name: str) -> int:
        return self.cfg.prefect_port if name == "prefect-server" else self.cfg.mlflow_port

    def record(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        st = state_doc(self.cfg.home, self.cfg.project_root, self.services, extra)
        save_state(self.cfg.home, st)
        return st

    def add(self, svc: Service) -> Service:
        self.services[svc.name] = svc
        self.started.append(svc)
        self.actions[svc.name] = "started"
        return svc

    def undo(self) -> None:
        """Stop what this run started (deploy, notify apply, then services newest first); record the rest."""
        with contextlib.suppress(Exception):
            abort_deploy(self.deploy_proc)
        with contextlib.suppress(Exception):
            stop_notifications(self.notify_run)
        for svc in reversed(self.started):
            with contextlib.suppress(Exception):
                svc.stop()
            self.services = {n: s for n, s in self.services.items() if s is not svc}
        self.record({"error": "last `up` failed; see logs"})


def _check_ports(run: _Run) -> None:
    """Every port we are about to bind must be free before anything starts."""
    for name, (setting, what) in PORT_SETTINGS.items():
        svc = run.services.get(name)
        if svc is None:
            ensure_port_free(run.port_of(name), setting, what)
        elif svc.port != run.port_of(name):
            run.progress(
                f"{name}: already running on port {svc.port}; requested port {run.port_of(name)} "
                "ignored (run `down` first)"
            )


def _stack_auth(cfg: StackConfig) -> StackAuth | None:
    """The credentials when auth is on (AuthError naming what is missing), before anything starts."""
    if not cfg.auth:
        return None
    auth = StackAuth.from_env()
    if (cfg.home / AUTH_DB_FILE).exists():
        return auth  # MLflow's admin exists already: its bootstrap variables are ignored
    if auth.mlflow_admin_password is None:
        raise AuthError(
            f"EVERGREEN_AUTH=1: MLflow's first start with auth needs {MLFLOW_ADMIN_PASSWORD_VAR} "
            "(the password of its admin account) in the environment"
        )
    first = (
        (MLFLOW_ADMIN_PASSWORD_VAR, auth.mlflow_admin_password),
        (MLFLOW_PASSWORD_VAR, auth.mlflow_password),
    )
    for var, value in first:
        if len(value) < MIN_PASSWORD:
            raise AuthError(
                f"{var} must have at least {MIN_PASSWORD} characters (MLflow's rule for new users)"
            )
    return auth


def _check_reused_auth(run: _Run) -> None:
    """A running server keeps the auth mode it was started with: refuse to mix."""
    want = run.auth is not None
    for name in ("prefect-server", "mlflow-server"):
        svc = run.services.get(name)
        if svc is not None and bool(svc.extra.get("auth")) != want:
            mode = "with" if svc.extra.get("auth") else "without"
            raise AuthError(
                f"{name} (pid {svc.pid}) runs {mode} auth but EVERGREEN_AUTH={int(want)}: "
                "run `evergreen down` first, or match EVERGREEN_AUTH"
            )


def _start_servers(run: _Run) -> None:
    """Spawn the missing servers without waiting: their health waits overlap later."""
    cfg, progress = run.cfg, run.progress
    if "prefect-server" not in run.services:
        pg = (cfg.prefect_database_url or "").startswith("postgresql")
        if pg and ensure_pg_database(str(cfg.prefect_database_url), extensions=("pg_trgm",)):
            progress("created the Prefect PostgreSQL database")
        progress(f"starting Prefect server on {HOST}:{cfg.prefect_port}")
        run.add(
            start_prefect_server(
                cfg.prefect_port,
                cfg.prefect_home,
                database_url=cfg.prefect_database_url,
                log_path=cfg.logs_dir / "prefect-server.log",
                env=run.server_env(run.auth.prefect_server_env() if run.auth else {}),
                wait=False,
            )
        )
    if "mlflow-server" not in run.services:
        if cfg.mlflow_backend.startswith("postgres") and ensure_pg_database(cfg.mlflow_backend):
            progress("created the MLflow PostgreSQL database")
        progress(f"starting MLflow server on {HOST}:{cfg.mlflow_port}")
        run.add(
            start_mlflow_server(
                cfg.mlflow_port,
                backend_store_uri=cfg.mlflow_backend,
                artifacts_destination=cfg.mlflow_artifacts_destination,
                log_path=cfg.logs_dir / "mlflow-server.log",
                env=run.server_env(run.auth.mlflow_server_env(cfg.home) if run.auth else {}),
                wait=False,
                app_name="basic-auth" if run.auth else None,
            )
        )
    run.record()


def _start_worker(run: _Run, api_url: str, env: dict[str, str], after_health: str | None) -> None:
    """Spawn the worker now; with `after_health` it imports Prefect at once and polls once that answers."""
    cfg = run.cfg
    if "prefect-worker" in run.services:
        return
    run.progress(f"starting {cfg.worker_type} worker for pool {cfg.work_pool!r}")
    run.add(
        start_prefect_worker(
            api_url,
            cfg.work_pool,
            log_path=cfg.logs_dir / "prefect-worker.log",
            cwd=cfg.project_root,
            env=without_server_secrets(child_env(cfg, run.client_env_with_secrets(env))),
            query_seconds=cfg.worker_query_seconds,
            name=f"evergreen-worker-{cfg.work_pool}",
            create_pool=False,  # `prefect worker start --type T` creates it: saves a CLI start
            worker_type=cfg.worker_type,
            wait=False,
            after_health=after_health,
            timeout=cfg.start_timeout,
        )
    )
    run.record()


def _watching(run: _Run, svc: Service, probe: Callable[[], bool]) -> Callable[[], bool]:
    """`probe`, but first check that every other process this run started still runs.

    So a part that dies early (say MLflow, on a bad backend URI) fails `up` at once, while it waits for
    another part, instead of after everything before it in line has come up.
    """
    others = [s for s in run.started if s is not svc]

    def check() -> bool:
        for other in others:
            if not other.alive():
                code = other._proc.poll() if other._proc is not None else None
                raise StartupError(
                    f"{other.name} (pid {other.pid}) exited with code {code} while the stack was "
                    f"starting; log {other.log_path}:\n{other.log_tail()}"
                )
        return probe()

    return check


def _wait(svc: Service, run: _Run) -> None:
    """Until `svc` is healthy, or any part this run started has died (StartupError with its log tail)."""
    if svc.name == "prefect-worker" and svc._probe is None:  # reused: loaded from the state file
        worker_probe(svc)
    url = svc.health_url
    probe = svc._probe or (lambda: http_get(url, timeout=2.0)[0] == 200 if url else True)
    secs = wait_healthy(svc, timeout=run.cfg.start_timeout, check=_watching(run, svc, probe))
    if svc._proc is not None:  # started by this run (a reused one was only given time to finish starting)
        svc.startup_seconds = secs
        run.progress(f"{svc.name} healthy after {secs:.1f}s (pid {svc.pid})")


def _bring_up(run: _Run, deploy: bool) -> dict[str, Any]:
    """Spawn servers, worker and a held deploy at once; then limits, notify apply, queues, the deploy."""
    cfg, progress = run.cfg, run.progress
    _start_servers(run)
    prefect_svc, mlflow_svc = run.services["prefect-server"], run.services["mlflow-server"]
    api_url = f"{prefect_svc.url}/api"
    env = client_env(cfg, api_url, mlflow_svc.url or cfg.mlflow_url)
    _start_worker(run, api_url, env, after_health=prefect_svc.health_url or f"{api_url}/health")
    client = run.client_env_with_secrets(env)
    run.deploy_proc, deploy_info = start_deploy(cfg, client, deploy, progress, gated=True)
    _wait(prefect_svc, run)
    if run.auth is not None:
        check_prefect(api_url, run.auth.prefect_auth_string)
    limit_actions = limits_mod.ensure_limits(api_url, limits_mod.desired_limits(cfg.models_dir))
    if deploy and cfg.apply_notifications:
        run.notify_run = start_notifications(cfg, api_url, client)
    _wait(run.services["prefect-worker"], run)  # the pool exists once the worker is online
    # before the deploy, which would create a missing queue with the next free priority
    queue_actions = queues_mod.ensure_work_queues(api_url, cfg.work_pool, work_queues())
    release_deploy(cfg, run.deploy_proc, deploy_info, progress)
    _wait(mlflow_svc, run)
    auth_info: dict[str, Any] = {"enabled": False}
    if run.auth is not None:
        user = ensure_mlflow_user(mlflow_svc.url or cfg.mlflow_url, run.auth)
        progress(f"MLflow user {run.auth.mlflow_user!r}: {user}")
        auth_info = {**run.auth.summary(), "mlflow_user_action": user}
    deployed = finish_deploy(cfg, run.deploy_proc, deploy_info, progress)
    notify: dict[str, Any] = {"status": "skipped", "reason": "--no-deploy or disabled"}
    if run.notify_run is not None:
        notify = finish_notifications(run.notify_run, progress)
    return {
        "urls": {"prefect_ui": prefect_svc.url, "prefect_api": api_url, "mlflow_ui": mlflow_svc.url},
        "env": env,
        "logs_dir": str(cfg.logs_dir),
        "work_pool": cfg.work_pool,
        "limits": limit_actions,
        "work_queues": queue_actions,
        "deploy": deployed,
        "notifications": notify,
        "auth": auth_info,
    }


def up(cfg: StackConfig, *, deploy: bool = True, progress: Progress = _noop) -> dict[str, Any]:
    """Start or reuse every service, deploy, and return the recorded state (plus `actions`)."""
    cfg.home.mkdir(parents=True, exist_ok=True)
    cfg.logs_dir.mkdir(parents=True, exist_ok=True)
    with stack_lock(cfg.home):
        return _up_locked(cfg, deploy=deploy, progress=progress)


def _up_locked(cfg: StackConfig, *, deploy: bool, progress: Progress) -> dict[str, Any]:
    t_start = time.monotonic()
    run = _Run.from_state(cfg, progress)
    run.auth = _stack_auth(cfg)
    _check_reused_auth(run)
    _check_ports(run)
    try:
        extra = _bring_up(run, deploy)
    except BaseException:
        run.undo()
        raise
    extra["env_file"] = str(write_env_file(cfg, extra["env"]))
    st = run.record(extra)
    st["actions"] = run.actions
    st["up_seconds"] = round(time.monotonic() - t_start, 2)
    dep = extra["deploy"]
    if dep.get("status") == "failed":
        raise DeployError(
            f"`prefect deploy` failed (exit {dep.get('returncode')}); services are up. "
            f"Log {dep.get('log')}:\n{tail(dep.get('log'), 30)}"
        )
    return st
