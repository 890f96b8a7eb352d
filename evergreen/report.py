"""Compatibility name: the demo report moved to evergreen.reports.demo."""

from evergreen.reports.demo import (
    DECISION_COLORS,
    LINEAGE_FIRST,
    PLOT_DIV_ID,
    SUMMARY_HEADERS,
    TRIGGER_SYMBOLS,
    build_report,
    retrain_points,
    summary_rows,
    timeline_figure,
)

__all__ = [
    "DECISION_COLORS",
    "LINEAGE_FIRST",
    "PLOT_DIV_ID",
    "SUMMARY_HEADERS",
    "TRIGGER_SYMBOLS",
    "build_report",
    "retrain_points",
    "summary_rows",
    "timeline_figure",
]
