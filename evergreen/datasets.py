"""Seed datasets shipped in seeds/: turn the raw files into model-ready frames."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

ELEC2_START = pd.Timestamp("1996-05-07 00:00")


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


def weekly_batches(
    frame: pd.DataFrame, time_column: str, start: pd.Timestamp | None = None
) -> list[pd.DataFrame]:
    """Split a frame into consecutive 7-day batches starting at `start` (default: its first timestamp)."""
    t = frame[time_column]
    origin = start if start is not None else t.min().normalize()
    week = ((t - origin) // pd.Timedelta("7D")).astype("int64")
    return [g.reset_index(drop=True) for _, g in frame.groupby(week, sort=True)]
