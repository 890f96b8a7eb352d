"""Real-server fixtures: a pytest plugin, registered by the root conftest (``pytest_plugins``).

Servers bind free loopback ports, are started once per session on first use and stopped at the end.
Only the suites that talk to real servers request them: integration, flows (test_monitor_flow) and
e2e; unit tests never start one. Why a plugin, not a copy per suite conftest: a session fixture
defined in two conftests is two fixtures, so a full run would start one Prefect and one MLflow
server per suite and keep them all until the session ends.

Fixtures (all servers bind 127.0.0.1 on a free port, with state and logs under pytest tmp dirs):

- ``mlflow_server`` (session) -> :class:`MlflowServer`: ``.url`` is the tracking URI
  (SQLite backend, proxied local artifacts), plus ``.port``, ``.log_path``, ``.service``.
- ``prefect_server`` (session) -> :class:`PrefectServer` on SQLite: ``.api_url`` (``http://127.0.0.1:P/api``),
  ``.url`` (UI), ``.port``, ``.backend`` ("sqlite"), ``.home``, ``.log_path``, ``.service``.
- ``prefect_server_postgres`` (session) -> the same on PostgreSQL, in a FRESH database created for this
  run (with pg_trgm) and dropped at the end. Skips unless ``EVERGREEN_TEST_POSTGRES=1``.
- ``stack_backend`` (session, parametrized) -> "sqlite", plus "postgres" when ``EVERGREEN_TEST_POSTGRES=1``.
- ``prefect_backend_server`` -> the Prefect server for the current ``stack_backend``. A test that
  requests it runs once per backend::

      def test_trigger_fires(prefect_backend_server, prefect_worker, stack_env):
          env = stack_env(prefect=prefect_backend_server)
          ...

  To pin one backend, parametrize indirectly:
  ``@pytest.mark.parametrize("stack_backend", ["postgres"], indirect=True)`` (skips without the env var).
- ``prefect_worker`` (function) -> factory ``start(pool=None, *, server=None, cwd=None, env=None,
  query_seconds=1.0, worker_type="evergreen-process") -> Service``: creates the work pool of that type
  (idempotent) and starts a worker that polls it; default server is ``prefect_server``, default pool a unique name (``svc.extra["pool"]``).
  Every worker started is stopped (with its flow-run subprocesses) after the test.
- ``stack_env`` (function) -> ``set(prefect=None, mlflow=None, home=None, **extra) -> dict``: sets
  PREFECT_API_URL, MLFLOW_TRACKING_URI (+ EVERGREEN_MLFLOW_TRACKING_URI), EVERGREEN_HOME (default a tmp
  dir) and PREFECT_HOME in ``os.environ`` for the test, refreshes Prefect's in-process settings, and
  restores everything afterwards. Returns the env it set (pass it to a worker or subprocess).

Start-up timeouts: ``EVERGREEN_TEST_START_TIMEOUT`` seconds (default 240); on a timeout the error
includes the tail of the server log.
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

import stack

START_TIMEOUT = float(os.environ.get("EVERGREEN_TEST_START_TIMEOUT", "240"))
PG_ADMIN_DSN = os.environ.get(
    "EVERGREEN_TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def refresh_prefect() -> None:
    """Make an already-imported Prefect re-read its settings from os.environ."""
    if "prefect.context" in sys.modules:
        sys.modules["prefect.context"].refresh_global_settings_context()


def _postgres_enabled() -> bool:
    return os.environ.get("EVERGREEN_TEST_POSTGRES", "").lower() in {"1", "true", "yes"}


STACK_BACKENDS = ["sqlite"] + (["postgres"] if _postgres_enabled() else [])


@dataclass
class PrefectServer:
    api_url: str
    url: str
    port: int
    backend: str
    home: Path
    log_path: Path
    service: stack.Service
    database_url: str | None = None


@dataclass
class MlflowServer:
    url: str
    port: int
    backend_store_uri: str
    artifacts: Path
    log_path: Path
    service: stack.Service


def _start_prefect(tmp_path_factory: pytest.TempPathFactory, backend: str, database_url: str | None):
    home = tmp_path_factory.mktemp(f"prefect-{backend}")
    log_path = home / "prefect-server.log"
    port = stack.free_port()
    svc = stack.start_prefect_server(
        port,
        home,
        database_url=database_url,
        log_path=log_path,
        timeout=START_TIMEOUT,
        port_setting=None,
        die_with_parent=True,
    )
    url = f"http://{stack.HOST}:{port}"
    return PrefectServer(
        api_url=f"{url}/api",
        url=url,
        port=port,
        backend=backend,
        home=home,
        log_path=log_path,
        service=svc,
        database_url=database_url,
    )


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory):
    """A Prefect server on SQLite for the whole session."""
    server = _start_prefect(tmp_path_factory, "sqlite", None)
    try:
        yield server
    finally:
        server.service.stop()


@pytest.fixture(scope="session")
def prefect_server_postgres(tmp_path_factory: pytest.TempPathFactory):
    """A Prefect server on a fresh PostgreSQL database (dropped afterwards)."""
    if not _postgres_enabled():
        pytest.skip("set EVERGREEN_TEST_POSTGRES=1 to run against PostgreSQL")
    db = f"evergreen_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        stack.create_postgres_database(db, admin_dsn=PG_ADMIN_DSN)
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"cannot create PostgreSQL database {db} via {PG_ADMIN_DSN}: {exc}")
    url = stack.asyncpg_url(PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{db}")
    try:
        server = _start_prefect(tmp_path_factory, "postgres", url)
        try:
            yield server
        finally:
            server.service.stop()
    finally:
        with contextlib.suppress(Exception):
            stack.drop_postgres_database(db, admin_dsn=PG_ADMIN_DSN)


@pytest.fixture(scope="session", params=STACK_BACKENDS)
def stack_backend(request: pytest.FixtureRequest) -> str:
    """Prefect DB backend name: "sqlite" (always) and "postgres" (with EVERGREEN_TEST_POSTGRES=1)."""
    return request.param


@pytest.fixture(scope="session")
def prefect_backend_server(stack_backend: str, request: pytest.FixtureRequest) -> PrefectServer:
    """The Prefect server for `stack_backend`; tests requesting it run once per enabled backend."""
    name = "prefect_server_postgres" if stack_backend == "postgres" else "prefect_server"
    return request.getfixturevalue(name)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory):
    """An MLflow tracking server (SQLite backend, proxied artifacts) for the whole session."""
    root = tmp_path_factory.mktemp("mlflow")
    port = stack.free_port()
    log_path = root / "mlflow-server.log"
    backend = f"sqlite:///{root / 'mlflow.db'}"
    svc = stack.start_mlflow_server(
        port,
        backend_store_uri=backend,
        artifacts_destination=root / "artifacts",
        log_path=log_path,
        timeout=START_TIMEOUT,
        port_setting=None,
        die_with_parent=True,
    )
    try:
        yield MlflowServer(
            url=f"http://{stack.HOST}:{port}",
            port=port,
            backend_store_uri=backend,
            artifacts=root / "artifacts",
            log_path=log_path,
            service=svc,
        )
    finally:
        svc.stop()


@pytest.fixture
def prefect_worker(request: pytest.FixtureRequest, tmp_path: Path):
    """Factory: start a process worker for a pool (see module docstring). Stops them after the test."""
    started: list[stack.Service] = []

    def start(
        pool: str | None = None,
        *,
        server: PrefectServer | None = None,
        cwd: Path | str | None = None,
        env: dict[str, str] | None = None,
        query_seconds: float = 1.0,
        worker_type: str = stack.prefect_worker.WORKER_TYPE,
    ) -> stack.Service:
        server = server or request.getfixturevalue("prefect_server")
        pool = pool or f"test-pool-{uuid.uuid4().hex[:8]}"
        base = dict(os.environ)
        if env:
            base.update(env)
        base["PREFECT_API_URL"] = server.api_url
        svc = stack.start_prefect_worker(
            server.api_url,
            pool,
            log_path=tmp_path / f"worker-{pool}-{len(started)}.log",
            cwd=cwd or Path.cwd(),
            env=base,
            query_seconds=query_seconds,
            timeout=START_TIMEOUT,
            die_with_parent=True,
            worker_type=worker_type,
        )
        started.append(svc)
        return svc

    try:
        yield start
    finally:
        for svc in reversed(started):
            with contextlib.suppress(Exception):
                svc.stop()


@pytest.fixture
def stack_env(tmp_path: Path):
    """Setter for the env a test needs to talk to the servers (see module docstring)."""
    mp = pytest.MonkeyPatch()
    touched_mlflow = False

    def _refresh_prefect() -> None:
        refresh_prefect()
        if "prefect.events.worker" in sys.modules:
            # The events worker is cached without its API URL in the key: flush and stop it so the
            # next event opens a client for the server this test points at (not a previous test's).
            sys.modules["prefect.events.worker"].EventsWorker.drain_all(timeout=30)

    def set_env(
        prefect: PrefectServer | str | None = None,
        mlflow: MlflowServer | str | None = None,
        home: Path | str | None = None,
        **extra: str,
    ) -> dict[str, str]:
        nonlocal touched_mlflow
        env: dict[str, str] = {}
        home = Path(home) if home else tmp_path / "evergreen-home"
        home.mkdir(parents=True, exist_ok=True)
        env["EVERGREEN_HOME"] = str(home)
        env["PREFECT_HOME"] = str(home / "prefect-client")
        env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
        if prefect is not None:
            env["PREFECT_API_URL"] = prefect if isinstance(prefect, str) else prefect.api_url
        if mlflow is not None:
            uri = mlflow if isinstance(mlflow, str) else mlflow.url
            env["MLFLOW_TRACKING_URI"] = uri
            env["EVERGREEN_MLFLOW_TRACKING_URI"] = uri
        env.update({k: str(v) for k, v in extra.items()})
        for k, v in env.items():
            mp.setenv(k, v)
        _refresh_prefect()
        if mlflow is not None and "mlflow" in sys.modules:
            sys.modules["mlflow"].set_tracking_uri(env["MLFLOW_TRACKING_URI"])
            touched_mlflow = True
        return env

    try:
        yield set_env
    finally:
        mp.undo()
        _refresh_prefect()
        if touched_mlflow and "mlflow" in sys.modules:
            with contextlib.suppress(Exception):
                sys.modules["mlflow"].set_tracking_uri(None)
