"""The replayed data: the warm-up frame and one frame per replay week, sliced from the Elec2 seed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from demo.options import DemoError, DemoOptions


def replay_batches(opts: DemoOptions, project_root: Path) -> tuple[Any, list[Any]]:
    """(warm-up frame, [replay week frames]) sliced from the Elec2 seed."""
    import pandas as pd

    from evergreen.datasets import prepare_elec2, weekly_batches

    frame = prepare_elec2(project_root / "seeds" / "elec2" / "electricity.csv")
    weeks = weekly_batches(frame, "timestamp")
    first = opts.start_week - opts.warmup_weeks
    if first < 0 or opts.start_week + opts.weeks > len(weeks):
        raise DemoError(
            f"--start-week {opts.start_week} with {opts.warmup_weeks} warm-up weeks and --weeks {opts.weeks} "
            f"does not fit Elec2's {len(weeks)} weeks"
        )
    warm = pd.concat(weeks[first : opts.start_week], ignore_index=True)
    return warm, weeks[opts.start_week : opts.start_week + opts.weeks]


def write_batch(frame: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S", lineterminator="\n")
    return path
