"""Small shared data for pure unit tests: the Elec2 seed and its spec, loaded once (tests/support/builders.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from evergreen.spec import ModelSpec, load_spec
from tests.support.builders import MODELS_DIR, elec2_frame


@pytest.fixture(scope="session")
def elec2_spec() -> ModelSpec:
    return load_spec("elec2", MODELS_DIR)


@pytest.fixture(scope="session")
def elec2() -> pd.DataFrame:
    return elec2_frame()
