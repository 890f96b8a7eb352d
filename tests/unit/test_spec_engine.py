"""`training.engine`: when a fit runs on Dask, and what the spec refuses (pure)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from evergreen.spec import ModelSpec
from evergreen.spec_engine import TrainingEngine
from tests.unit.test_spec_matrix import spec_dict


def test_uses_dask() -> None:
    assert not TrainingEngine().uses_dask(10**9)  # local by default
    assert TrainingEngine(kind="dask").uses_dask(1)
    auto = TrainingEngine(kind="auto", dask_min_rows=1000)
    assert not auto.uses_dask(999) and auto.uses_dask(1000)


def test_spec_accepts_engine_and_defaults_local() -> None:
    raw = spec_dict("binary")
    assert ModelSpec.model_validate(raw).training.engine.kind == "local"
    raw["training"]["engine"] = {"kind": "dask", "address": "tcp://127.0.0.1:8786", "workers": 3}
    engine = ModelSpec.model_validate(raw).training.engine
    assert engine.address == "tcp://127.0.0.1:8786" and engine.workers == 3


@pytest.mark.parametrize("engine", [{"kind": "dask"}, {"kind": "auto"}])
def test_dask_engine_needs_lightgbm(engine: dict) -> None:
    raw = spec_dict("binary", estimator="sklearn")
    raw["training"]["engine"] = engine
    with pytest.raises(ValidationError, match="lightgbm.dask"):
        ModelSpec.model_validate(raw)


def test_unknown_engine_key_is_refused() -> None:
    raw = spec_dict("binary")
    raw["training"]["engine"] = {"kind": "dask", "threads": 4}
    with pytest.raises(ValidationError):
        ModelSpec.model_validate(raw)
