"""The demo report: the pure `evergreen.report` page, plus the raw result as JSON next to it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from demo.options import DemoResult


def write_report(result: DemoResult, path: Path) -> Path:
    from evergreen.report import build_report

    meta = {
        "replayed weeks": f"{result.weeks[0]['week']}-{result.weeks[-1]['week']} "
        f"({result.weeks[0]['start']} to {result.weeks[-1]['start']})"
        if result.weeks
        else "-",
        "warm-up": f"{result.warmup.get('rows')} rows, first champion v{result.warmup.get('champion_version')}",
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "demo home": result.demo_home,
    }
    html = build_report(result.weeks, result.versions, title="Evergreen demo: elec2 replay", meta=meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    (path.with_suffix(".json")).write_text(json.dumps(result.to_dict(), indent=2, default=str))
    return path
