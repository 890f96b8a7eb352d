"""Which Elec2 weeks the demo should replay: each candidate start week's drift against its warm-up.

For every candidate start week, builds the drift profile of the 8 warm-up weeks before it (as the
demo's first champion sees them) and measures the spec's drift trigger (`triggers.drift` of
models/elec2.yaml) on each of the 8 weeks that follow. Prints one line per start week: the drift
score of each following week (the largest decile PSI across the features), `*` where the trigger
calls it dataset drift. docs/demo.md quotes the table.

    .venv/bin/python benchmarks/demo_weeks_drift.py [--starts 44 48 52 53] [--follow 8]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import pandas as pd

    from evergreen.datasets import seed_frame, weekly_batches
    from evergreen.drift import build_profile, measure_drift
    from evergreen.spec import load_spec

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, nargs="+", default=[44, 48, 52, 53])
    parser.add_argument("--follow", type=int, default=8, help="weeks measured after each start")
    parser.add_argument("--warmup", type=int, default=8, help="warm-up weeks before each start")
    args = parser.parse_args()

    spec = load_spec("elec2", ROOT / "models")
    cfg = spec.triggers.drift
    weeks = weekly_batches(seed_frame("elec2", ROOT / "seeds"), spec.data.time_column)
    print("| start week (date) | drift score of the following weeks (`*` = dataset drift) |")
    print("|---|---|")
    for start in args.starts:
        warm = pd.concat(weeks[start - args.warmup : start], ignore_index=True)
        profile = build_profile(warm, spec.numeric, spec.categorical, bins=cfg.bins, task=spec.task)
        cells = []
        for batch in weeks[start : start + args.follow]:
            report = measure_drift(profile, batch, cfg, features=spec.features)
            star = "*" if report.dataset_drift else ""
            cells.append(f"{report.drift_score:.2f}{star}")
        day = weeks[start][spec.data.time_column].iloc[0].date()
        print(f"| {start} ({day}) | {' '.join(cells)} |")


if __name__ == "__main__":
    main()
