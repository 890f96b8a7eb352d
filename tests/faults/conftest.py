"""Fixtures shared by the fault suite: a private model on the session's real servers."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from tests.support.builders import ROOT, elec2_spec_dict, write_spec


@pytest.fixture
def fresh_model(prefect_server, mlflow_server, stack_env, tmp_path, monkeypatch) -> Callable[[str], str]:
    """Factory: a copy of the elec2 spec named `<prefix>-<hex>`, with servers and home set for the test."""

    def make(prefix: str) -> str:
        monkeypatch.chdir(ROOT)
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        write_spec(tmp_path / "models", elec2_spec_dict(name))
        stack_env(
            prefect=prefect_server,
            mlflow=mlflow_server,
            home=tmp_path / "home",
            EVERGREEN_MODELS_DIR=str(tmp_path / "models"),
        )
        return name

    return make
