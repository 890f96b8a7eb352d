"""The replayed data: the warm-up frame and one frame per replay week, sliced from the Elec2 seed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from demo.options import DemoError, DemoOptions


def replay_batches(
    opts: DemoOptions,
    project_root: Path,
    model: str | None = None,
    start_week: int | None = None,
    weeks_n: int | None = None,
) -> tuple[Any, list[Any]]:
    """(warm-up frame, [replay week frames]) sliced from a shipped model's seed (default: the demo's)."""
    import pandas as pd

    from evergreen.datasets import seed_frame, weekly_batches

    model = model or opts.model
    start = opts.start_week if start_week is None else start_week
    n = opts.weeks if weeks_n is None else weeks_n
    try:
        frame = seed_frame(model, project_root / "seeds")
    except ValueError as exc:
        raise DemoError(str(exc)) from exc
    weeks = weekly_batches(frame, "timestamp")
    first = start - opts.warmup_weeks
    if first < 0 or start + n > len(weeks):
        raise DemoError(
            f"{model}: start week {start} with {opts.warmup_weeks} warm-up weeks and {n} replay weeks "
            f"does not fit its {len(weeks)} weeks"
        )
    warm = pd.concat(weeks[first:start], ignore_index=True)
    return warm, weeks[start : start + n]


def write_batch(frame: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S", lineterminator="\n")
    return path
