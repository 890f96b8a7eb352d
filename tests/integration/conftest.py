"""Integration suite: real Prefect and MLflow servers, real `evergreen up/down`, real DVC.

Server fixtures (``prefect_server``, ``prefect_backend_server``, ``mlflow_server``, ``prefect_worker``,
``stack_env``) are session fixtures of tests/support/servers.py, a plugin the root conftest registers,
so this suite shares one server set with flows and e2e in a full run. Test data: tests/support/builders.py.
"""

from __future__ import annotations

import pandas as pd
import pytest

from tests.support.builders import ROOT, elec2_weeks


@pytest.fixture(scope="session")
def elec2_week_batches() -> list[pd.DataFrame]:
    """Elec2 in weekly batches of 336 rows, oldest first (copies: tests may modify them)."""
    return elec2_weeks()


@pytest.fixture
def env(prefect_server, mlflow_server, stack_env, tmp_path, monkeypatch):
    """Real Prefect + MLflow servers, a fresh EVERGREEN_HOME (its own DVC registry and remote), cwd the repo."""
    monkeypatch.chdir(ROOT)
    return stack_env(
        prefect=prefect_server,
        mlflow=mlflow_server,
        home=tmp_path / "home",
        EVERGREEN_MLFLOW_TRACKING_URI=mlflow_server.url,
    )
