"""Where the local stack lives and what its processes see: `StackConfig` and the environments."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stack.net import HOST
from stack.postgres import asyncpg_url, mlflow_pg_url
from stack.prefect_worker import WORKER_TYPE

ENV_FILE = "stack.env"


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
    worker_type: str = WORKER_TYPE  # or Prefect's "process" (workers/prefork.py)
    project_root: Path | None = None
    models_dir: Path | None = None
    start_timeout: float = 240.0
    auth: bool = False  # EVERGREEN_AUTH: Prefect basic auth + MLflow's basic-auth app (docs/security.md)
    # beside the deploy, `evergreen notify apply` when a spec names a notification block (stack/notify.py);
    # the demo turns it off and applies its own once its webhook block exists
    apply_notifications: bool = True

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def prefect_home(self) -> Path:
        return self.home / "prefect"

    @property
    def mlflow_backend(self) -> str:
        uri = self.mlflow_backend_uri or f"sqlite:///{self.home / 'mlflow.db'}"
        return mlflow_pg_url(uri)

    @property
    def mlflow_artifacts_destination(self) -> str:
        return self.mlflow_artifacts or str(self.home / "mlartifacts")

    @property
    def prefect_api_url(self) -> str:
        return f"http://{HOST}:{self.prefect_port}/api"

    @property
    def mlflow_url(self) -> str:
        return f"http://{HOST}:{self.mlflow_port}"

    @classmethod
    def from_settings(cls, settings: Any = None) -> StackConfig:
        """The config from EVERGREEN_* settings (see evergreen.settings)."""
        from evergreen.settings import get_settings

        s = settings or get_settings()
        db = s.database_url or os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL") or None
        root = find_project_root()
        models_dir = s.models_dir if s.models_dir.is_absolute() else (root / s.models_dir)
        return cls(
            home=s.home_abs,
            prefect_port=s.prefect_port,
            mlflow_port=s.mlflow_port,
            prefect_database_url=asyncpg_url(db) if db else None,
            mlflow_backend_uri=s.mlflow_backend_uri,
            mlflow_artifacts=s.mlflow_artifacts_destination,
            work_pool=s.work_pool,
            worker_query_seconds=s.worker_query_seconds,
            worker_type=s.worker_type,
            project_root=root,
            models_dir=models_dir,
            start_timeout=s.stack_start_timeout,
            auth=s.auth,
        )


def find_project_root(start: Path | None = None) -> Path:
    """Nearest directory (from cwd up) holding prefect.yaml, else the one holding this package."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "prefect.yaml").is_file():
            return d
    return Path(__file__).resolve().parent.parent


def client_env(cfg: StackConfig, prefect_api_url: str, mlflow_url: str) -> dict[str, str]:
    """What a user's shell, the worker and its flow runs need to talk to this stack.

    Never a secret: this is written to stack.json and stack.env (credentials stay in the environment).
    """
    return {
        "PREFECT_API_URL": prefect_api_url,
        "MLFLOW_TRACKING_URI": mlflow_url,
        "EVERGREEN_MLFLOW_TRACKING_URI": mlflow_url,
        "EVERGREEN_HOME": str(cfg.home),
        "EVERGREEN_WORK_POOL": cfg.work_pool,
        "EVERGREEN_PROJECT_DIR": str(cfg.project_root or Path.cwd()),
    }


def child_env(cfg: StackConfig, extra: dict[str, str]) -> dict[str, str]:
    """This process's environment plus `extra`, with the stack's own PREFECT_HOME."""
    env = dict(os.environ)
    env.update(extra)
    env["PREFECT_HOME"] = str(cfg.prefect_home)
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    return env


def write_env_file(cfg: StackConfig, env: dict[str, str]) -> Path:
    """``<home>/stack.env``: `source` it to point a shell at the stack."""
    path = cfg.home / ENV_FILE
    lines = ["# written by `evergreen up`; use with: source " + str(path)]
    lines += [f"export {k}={v}" for k, v in env.items()]
    path.write_text("\n".join(lines) + "\n")
    return path
