"""Test data builders shared by every suite: the Elec2 seed, its weeks and spec, drifted batches,
batch files, and the synthetic stream with a known abrupt drift.

Loaders are cached per process; they return copies, so a test may modify what it gets.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[2]
ELEC2_CSV = ROOT / "seeds" / "elec2" / "electricity.csv"
MODELS_DIR = ROOT / "models"


# ------------------------------------------------------------------------------------------- Elec2


@functools.cache
def _elec2() -> pd.DataFrame:
    from evergreen.datasets import prepare_elec2

    return prepare_elec2(ELEC2_CSV)


@functools.cache
def _elec2_weeks() -> tuple[pd.DataFrame, ...]:
    from evergreen.datasets import weekly_batches

    return tuple(weekly_batches(_elec2(), "timestamp"))


def elec2_frame() -> pd.DataFrame:
    """The prepared Elec2 seed (what `evergreen seed` ingests)."""
    return _elec2().copy()


def elec2_weeks() -> list[pd.DataFrame]:
    """Elec2 cut into weekly batches (336 rows each), oldest first."""
    return [w.copy() for w in _elec2_weeks()]


def elec2_spec_dict(name: str | None = None) -> dict[str, Any]:
    """The raw models/elec2.yaml, optionally renamed (a private copy keeps registry entries apart)."""
    raw = yaml.safe_load((MODELS_DIR / "elec2.yaml").read_text())
    if name is not None:
        raw["name"] = name
    return raw


def write_spec(models_dir: Path, raw: dict[str, Any]) -> Path:
    """Write a spec dict as ``<models_dir>/<name>.yaml``; returns the path."""
    models_dir.mkdir(parents=True, exist_ok=True)
    path = models_dir / f"{raw['name']}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def write_batch(frame: pd.DataFrame, path: Path) -> str:
    """A batch file as a user drops it: CSV for ``*.csv``, else Parquet. Returns the path as str."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return str(path)


def drifted(week: pd.DataFrame) -> pd.DataFrame:
    """A real Elec2 week with NSW demand (a critical feature) and price pushed up, still inside [0, 1]."""
    out = week.copy()
    out["nswdemand"] = (out["nswdemand"] + 0.25).clip(0, 1)
    out["nswprice"] = (out["nswprice"] * 2).clip(0, 1)
    return out


def training_sample(
    weeks: list[pd.DataFrame], seed_weeks: int, rows: int = 336, random_state: int = 7
) -> pd.DataFrame:
    """Rows drawn from the weeks a champion trained on (weeks[seed_weeks-9 : seed_weeks-1]).

    Real consecutive Elec2 weeks drift (nswprice moves week to week), so a genuinely non-drifted batch
    is a sample of the distribution the champion was trained on.
    """
    train = pd.concat(weeks[seed_weeks - 9 : seed_weeks - 1], ignore_index=True)
    return train.sample(rows, random_state=random_state).reset_index(drop=True)


# ---------------------------------------------------------------------------------------- synthetic

SYNTH_ROWS = 240  # rows per batch (10 days of hourly rows)
SYNTH_DRIFT_AT = 8  # first batch after the abrupt drift
SYNTH_BATCHES = 14


def synthetic_stream(
    n_batches: int = SYNTH_BATCHES,
    rows: int = SYNTH_ROWS,
    drift_at: int | None = SYNTH_DRIFT_AT,
    seed: int = 0,
) -> pd.DataFrame:
    """Hourly rows; from batch `drift_at` on, both numeric features shift by 2.5 sd AND the concept flips."""
    rng = np.random.default_rng(seed)
    n = n_batches * rows
    x1 = rng.normal(0.0, 1.0, n)
    x2 = rng.normal(0.0, 1.0, n)
    after = np.zeros(n, dtype=bool) if drift_at is None else np.arange(n) >= drift_at * rows
    x1[after] += 2.5
    x2[after] += 2.5
    s = x1 + 0.5 * x2 + rng.normal(0.0, 0.3, n)
    y = np.where(after, s < 3.75, s > 0).astype(int)
    return pd.DataFrame(
        {
            "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n), unit="h"),
            "x1": x1,
            "x2": x2,
            "c": rng.integers(0, 3, n),
            "y": y,
        }
    )


_SYNTH_SPEC: dict[str, Any] = {
    "name": "synth",
    "data": {"path": "synth", "target": "y", "time_column": "ts", "positive_label": 1},
    "features": [
        {"name": "x1", "type": "numeric"},
        {"name": "x2", "type": "numeric"},
        {"name": "c", "type": "categorical", "categories": [0, 1, 2]},
    ],
    "metric": "roc_auc",
    "training": {
        "window": {"kind": "rolling", "rows": 2 * SYNTH_ROWS},
        "holdout": {"period": None, "rows": SYNTH_ROWS},
        "estimator": {"params": {"n_estimators": 25, "num_leaves": 7, "min_child_samples": 10}},
        "min_train_rows": 100,
    },
    "gate": {"floor": 0.6, "tolerance": 0.02, "n_bootstrap": 200},
    "triggers": {
        "drift": {"statistic": "psi", "threshold": 0.2, "share": 0.5, "bins": 20},
        "performance": {"floor": 0.8, "consecutive": 1},
        "volume": {"min_new_share": 0.5},
        "cooldown": None,
    },
}


def synthetic_spec_dict() -> dict[str, Any]:
    """The model spec that fits `synthetic_stream` (a fresh copy)."""
    return copy.deepcopy(_SYNTH_SPEC)
