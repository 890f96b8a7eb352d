"""Small shared data for pure unit tests: the Elec2 seed and its spec, loaded once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from evergreen.datasets import prepare_elec2
from evergreen.spec import ModelSpec, load_spec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def elec2_spec() -> ModelSpec:
    return load_spec("elec2", ROOT / "models")


@pytest.fixture(scope="session")
def elec2() -> pd.DataFrame:
    return prepare_elec2(ROOT / "seeds" / "elec2" / "electricity.csv")
