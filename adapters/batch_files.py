"""Reading incoming batch files and quarantining rejected ones (nothing is ever silently dropped)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd


class BatchError(ValueError):
    """A batch file that cannot be read at all."""


def read_batch(path: Path) -> pd.DataFrame:
    """Read a CSV or parquet batch; other formats and unreadable files raise BatchError naming the file."""
    if path.is_dir():
        raise BatchError(f"batch path {path} is a directory: give one .csv or .parquet file")
    if not path.is_file():
        raise BatchError(f"batch file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except Exception as exc:  # parser errors come in many types; all mean "unreadable"
        raise BatchError(f"cannot read batch {path}: {exc}") from exc
    raise BatchError(f"unsupported batch format {suffix!r} for {path}: use .csv or .parquet")


def quarantine(path: Path, model: str, report: dict[str, Any], root: Path) -> tuple[Path, Path]:
    """Move the file into `root/<model>/` with a JSON report beside it. Returns (file, report)."""
    folder = root / model
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = folder / f"{stamp}-{path.name}"
    shutil.move(str(path), target)
    report_path = target.with_name(target.name + ".report.json")
    report_path.write_text(
        json.dumps(
            {"model": model, "source": str(path), "quarantined_at": stamp, "file": str(target), **report},
            indent=2,
            default=str,
        )
    )
    return target, report_path
