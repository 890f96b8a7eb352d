"""The demo report: the pure `evergreen.report` page, plus the raw result as JSON next to it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from demo.options import DemoResult


def write_report(result: DemoResult, path: Path) -> Path:
    from evergreen.report import build_report
    from evergreen.reports.release import release_section

    meta = {
        "replayed weeks": f"{result.weeks[0]['week']}-{result.weeks[-1]['week']} "
        f"({result.weeks[0]['start']} to {result.weeks[-1]['start']})"
        if result.weeks
        else "-",
        "warm-up": f"{result.warmup.get('rows')} rows, first champion v{result.warmup.get('champion_version')}",
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "demo home": result.demo_home,
    }
    models = [result.options.get("model", "elec2")]
    others = []
    if result.side:
        side = result.side
        models.append(side["model"])
        weeks = side.get("weeks") or []
        meta[f"{side['model']} replayed weeks"] = (
            f"{weeks[0]['week']}-{weeks[-1]['week']} ({weeks[0]['start']} to {weeks[-1]['start']})"
            if weeks
            else "-"
        )
        warm = side.get("warmup") or {}
        meta[f"{side['model']} warm-up"] = (
            f"{warm.get('rows')} rows, first champion v{warm.get('champion_version')}"
        )
        others.append({**side, "x_title": f"replay week of {side['model']} (weeks since its first row)"})
    title = f"Evergreen demo: {' and '.join(models)} replay"
    appendix = release_section(result.shadow_decisions, result.notifications, result.release)
    html = build_report(
        result.weeks, result.versions, title=title, meta=meta, others=others, appendix=appendix
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    (path.with_suffix(".json")).write_text(json.dumps(result.to_dict(), indent=2, default=str))
    return path
