"""Runtime settings from `EVERGREEN_*` environment variables, with local defaults under `.evergreen/`.

Nothing here runs at import time: call `get_settings()` where a path or URL is needed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where Evergreen keeps state and which services it talks to."""

    model_config = SettingsConfigDict(env_prefix="EVERGREEN_", extra="ignore")

    home: Path = Field(default=Path(".evergreen"), description="State dir: registry, remote, logs, reports.")
    models_dir: Path = Field(
        default=Path("models"), description="Folder holding one <model>.yaml spec per model."
    )
    data_repo: str | None = Field(
        default=None,
        description="git+DVC data registry (path or git URL). Default: <home>/data-registry.",
    )
    dvc_remote: str | None = Field(
        default=None,
        description="DVC remote URL for the registry (s3://, gs://, ssh://, or a path). Default: <home>/dvc-remote.",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("EVERGREEN_MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_URI"),
        description="MLflow tracking URI. Default: sqlite:///<home>/mlflow.db.",
    )
    git_author_name: str = Field(default="Evergreen", description="Author of registry commits.")
    git_author_email: str = Field(
        default="evergreen@localhost", description="Author email of registry commits."
    )
    audit_experiment: str = Field(
        default="evergreen-audit", description="MLflow experiment holding the audit log (docs/audit.md)."
    )

    # Local stack (`evergreen up/status/down`); everything binds 127.0.0.1.
    prefect_port: int = Field(
        default=4200, description="Port of the Prefect server started by `evergreen up`."
    )
    mlflow_port: int = Field(default=5000, description="Port of the MLflow server started by `evergreen up`.")
    database_url: str | None = Field(
        default=None,
        description="Prefect server database (postgresql://user@host:port/db). Default: "
        "PREFECT_API_DATABASE_CONNECTION_URL if set, else SQLite under <home>/prefect.",
    )
    mlflow_backend_uri: str | None = Field(
        default=None,
        description="Backend store of the MLflow server (sqlite:///... or postgresql://...). "
        "Default: sqlite:///<home>/mlflow.db.",
    )
    mlflow_artifacts_destination: str | None = Field(
        default=None,
        description="Where the MLflow server stores artifacts (path, s3://, gs://...). Default: <home>/mlartifacts.",
    )
    work_pool: str = Field(default="evergreen-pool", description="Process work pool the local worker polls.")
    worker_query_seconds: float = Field(
        default=2.0, description="Worker poll interval, so event-triggered runs start within seconds."
    )
    worker_type: Literal["evergreen-process", "process"] = Field(
        default="evergreen-process",
        description="Worker type of the local worker and the pool it creates: `evergreen-process` starts "
        "flow runs forked from an interpreter that has imported Prefect, LightGBM, MLflow and GX "
        "(workers/prefork.py); `process` is Prefect's own process worker.",
    )
    auth: bool = Field(
        default=False,
        description="`evergreen up` runs Prefect with basic auth and MLflow with its basic-auth app; "
        "credentials come from PREFECT_SERVER_API_AUTH_STRING, MLFLOW_TRACKING_USERNAME/PASSWORD and "
        "MLFLOW_AUTH_ADMIN_PASSWORD (docs/security.md).",
    )
    stack_start_timeout: float = Field(
        default=240.0, description="Seconds to wait for each service's health."
    )
    mlflow_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds per MLflow HTTP request (sets MLFLOW_HTTP_REQUEST_TIMEOUT unless already set).",
    )
    mlflow_max_retries: int = Field(
        default=2,
        ge=0,
        description="Retries of a failed MLflow HTTP request (sets MLFLOW_HTTP_REQUEST_MAX_RETRIES unless set); "
        "with the timeout this bounds how long an unreachable server takes to report.",
    )

    @property
    def home_abs(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def registry_path(self) -> str:
        return self.data_repo or str(self.home_abs / "data-registry")

    @property
    def remote_url(self) -> str:
        return self.dvc_remote or str(self.home_abs / "dvc-remote")

    @property
    def quarantine_dir(self) -> Path:
        return self.home_abs / "quarantine"

    @property
    def reports_dir(self) -> Path:
        return self.home_abs / "reports"

    @property
    def logs_dir(self) -> Path:
        return self.home_abs / "logs"

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.home_abs / 'mlflow.db'}"


def mlflow_http_env(settings: Settings) -> dict[str, str]:
    """MLflow client env defaults that bound a call to an unreachable server (MLflow's own defaults
    retry for minutes). Callers apply them with os.environ.setdefault, so explicit MLFLOW_* values win."""
    return {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(int(max(1, settings.mlflow_timeout))),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(settings.mlflow_max_retries),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    }


def get_settings() -> Settings:
    """Read settings fresh from the environment (cheap; keeps tests free to change env)."""
    return Settings()


def code_git_sha(start: Path | None = None) -> str:
    """The code checkout's git sha, or 'unknown' outside a git checkout."""
    import subprocess

    env_sha = os.environ.get("EVERGREEN_CODE_SHA")
    if env_sha:
        return env_sha
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=start or Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
