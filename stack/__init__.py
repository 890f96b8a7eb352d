"""The local stack: Prefect and MLflow servers, the process worker, PostgreSQL, limits, up/down/status.

Modules (see docs/stack.md): ``errors``, ``net`` (ports, HTTP), ``processes`` (PIDs, trees, stopping),
``services`` (spawn + health wait), ``prefect_server``, ``prefect_worker``, ``mlflow_server``,
``postgres``, ``limits``, ``config``, ``state``, ``deploy``, ``local`` (up/status/down).
The names below are the public API; import them from here (``from stack import free_port``).
"""

from stack import limits, local
from stack.config import StackConfig, find_project_root
from stack.errors import DeployError, PortInUseError, StackBusyError, StackError, StartupError
from stack.local import down, status, up
from stack.mlflow_server import start_mlflow_server
from stack.net import (
    HOST,
    ensure_port_free,
    free_port,
    http_get,
    http_post_json,
    port_in_use,
    redact,
    wait_port_free,
)
from stack.postgres import (
    asyncpg_url,
    create_postgres_database,
    drop_postgres_database,
    ensure_pg_database,
    mlflow_pg_url,
    sync_pg_url,
)
from stack.prefect_server import prefect_env, start_prefect_server
from stack.prefect_worker import create_work_pool, start_prefect_worker, worker_online
from stack.processes import DEFAULT_STOP_TIMEOUT, descendants, pid_alive, process_start_time, stop_pid
from stack.services import DEFAULT_START_TIMEOUT, Service, spawn, tail, wait_healthy
from stack.state import load_state

__all__ = [
    "DEFAULT_START_TIMEOUT",
    "DEFAULT_STOP_TIMEOUT",
    "HOST",
    "DeployError",
    "PortInUseError",
    "Service",
    "StackBusyError",
    "StackConfig",
    "StackError",
    "StartupError",
    "asyncpg_url",
    "create_postgres_database",
    "create_work_pool",
    "descendants",
    "down",
    "drop_postgres_database",
    "ensure_pg_database",
    "ensure_port_free",
    "find_project_root",
    "free_port",
    "http_get",
    "http_post_json",
    "limits",
    "load_state",
    "local",
    "mlflow_pg_url",
    "pid_alive",
    "port_in_use",
    "prefect_env",
    "process_start_time",
    "redact",
    "spawn",
    "start_mlflow_server",
    "start_prefect_server",
    "start_prefect_worker",
    "status",
    "stop_pid",
    "sync_pg_url",
    "tail",
    "up",
    "wait_healthy",
    "wait_port_free",
    "worker_online",
]
