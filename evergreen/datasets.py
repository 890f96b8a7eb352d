"""Seed datasets shipped in seeds/: turn the raw files into model-ready frames.

`SEEDS` maps a shipped model's name to its raw file (under seeds/) and the function that prepares it;
`seed_frame` is what `evergreen seed`, `evergreen backtest <model>` and `make demo` read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

ELEC2_START = pd.Timestamp("1996-05-07 00:00")
# casual + registered = cnt (a leak of the target); instant is the row number
BIKE_DROPPED = ("instant", "dteday", "casual", "registered")


def prepare_elec2(raw_csv: Path) -> pd.DataFrame:
    """Elec2 with a real timestamp (1996-05-07 + row x 30 min, per SOURCE.txt) and without `date`."""
    raw = pd.read_csv(raw_csv)
    missing = {"date", "day", "period", "class"} - set(raw.columns)
    if missing:
        raise ValueError(f"{raw_csv} is not the Elec2 CSV: missing columns {sorted(missing)}")
    out = raw.drop(columns=["date"])
    out.insert(0, "timestamp", ELEC2_START + pd.to_timedelta([30 * i for i in range(len(raw))], unit="min"))
    out["day"] = out["day"].astype("int64")
    return out


def prepare_bike_sharing(raw_csv: Path) -> pd.DataFrame:
    """UCI Bike Sharing, hourly: `timestamp` = dteday + hr, target `cnt`, no leaking or id columns."""
    raw = pd.read_csv(raw_csv)
    missing = {"dteday", "hr", "cnt", *BIKE_DROPPED} - set(raw.columns)
    if missing:
        raise ValueError(f"{raw_csv} is not the bike sharing hour.csv: missing columns {sorted(missing)}")
    stamp = pd.to_datetime(raw["dteday"], format="%Y-%m-%d") + pd.to_timedelta(raw["hr"], unit="h")
    out = raw.drop(columns=list(BIKE_DROPPED))
    out.insert(0, "timestamp", stamp)
    out["cnt"] = out["cnt"].astype("float64")  # a regression target
    return out.sort_values("timestamp", kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class SeedDataset:
    """A shipped dataset: its raw file under seeds/ and the function that prepares it."""

    raw: str
    prepare: Callable[[Path], pd.DataFrame]


SEEDS: dict[str, SeedDataset] = {
    "elec2": SeedDataset("elec2/electricity.csv", prepare_elec2),
    "bike_sharing": SeedDataset("bike_sharing/hour.csv", prepare_bike_sharing),
}


def seed_frame(model: str, seeds_dir: Path = Path("seeds")) -> pd.DataFrame:
    """The prepared seed history of a shipped model (`SEEDS`); ValueError for any other name."""
    if model not in SEEDS:
        raise ValueError(
            f"no seed data for model {model!r} (shipped: {', '.join(SEEDS)}): "
            "pass a history file with --data (csv or parquet)"
        )
    return SEEDS[model].prepare(seeds_dir / SEEDS[model].raw)


def weekly_batches(
    frame: pd.DataFrame, time_column: str, start: pd.Timestamp | None = None
) -> list[pd.DataFrame]:
    """Split a frame into consecutive 7-day batches starting at `start` (default: its first timestamp)."""
    t = frame[time_column]
    origin = start if start is not None else t.min().normalize()
    week = ((t - origin) // pd.Timedelta("7D")).astype("int64")
    return [g.reset_index(drop=True) for _, g in frame.groupby(week, sort=True)]
