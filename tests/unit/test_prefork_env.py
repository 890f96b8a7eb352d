"""The run environment of the `evergreen-process` worker (workers/prefork.py) follows Prefect's `process` worker:
the job's `env` (pool and deployment) wins over the worker's own Prefect settings."""

from __future__ import annotations

import multiprocessing
import types
import uuid
from pathlib import Path

import pytest


def test_the_jobs_env_wins_over_the_workers_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.prefork import ForkedEngineStarter

    monkeypatch.setenv("PREFECT_LOGGING_LEVEL", "WARNING")
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:1/api")
    job_env: dict[str, str | None] = {
        "PREFECT_LOGGING_LEVEL": "DEBUG",
        "PREFECT_API_URL": "http://127.0.0.1:2/api",
    }
    starter = ForkedEngineStarter(multiprocessing.get_context("fork"), cwd=Path("."), env=job_env)
    run = types.SimpleNamespace(id=uuid.uuid4())
    env = starter.environment(run, {"PREFECT__CONTROL_PORT": "1234"})  # type: ignore[arg-type]
    assert env["PREFECT_LOGGING_LEVEL"] == "DEBUG"
    assert env["PREFECT_API_URL"] == "http://127.0.0.1:2/api"
    assert env["PREFECT__FLOW_RUN_ID"] == str(run.id)
    assert env["PREFECT__CONTROL_PORT"] == "1234"


def test_unset_job_keys_are_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.prefork import ForkedEngineStarter

    monkeypatch.setenv("EVERGREEN_SOMETHING", "from-the-worker")
    starter = ForkedEngineStarter(
        multiprocessing.get_context("fork"), cwd=Path("."), env={"EVERGREEN_SOMETHING": None}
    )
    env = starter.environment(types.SimpleNamespace(id=uuid.uuid4()), {})  # type: ignore[arg-type]
    assert "EVERGREEN_SOMETHING" not in env
