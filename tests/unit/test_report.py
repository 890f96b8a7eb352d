"""The pure demo report builder: self-contained HTML with the timeline, gate reports and lineage."""

from __future__ import annotations

import json

from evergreen.reports import demo as report


def synthetic_rows() -> tuple[list[dict], list[dict]]:
    weeks = [
        {
            "week": 50,
            "start": "1997-04-22",
            "drift_score": 0.4,
            "accuracy": 0.81,
            "champion_version": "1",
            "retrains": [],
        },
        {
            "week": 51,
            "start": "1997-04-29",
            "drift_score": 1.9,
            "drift_detected": True,
            "accuracy": 0.72,
            "champion_version": "2",
            "retrains": [{"version": "2", "reason": "drift", "status": "promoted", "trigger_event_id": "e1"}],
        },
        {
            "week": 52,
            "start": "1997-05-06",
            "drift_score": 2.5,
            "drift_detected": True,
            "accuracy": 0.70,
            "champion_version": "2",
            "retrains": [
                {"version": "3", "reason": "drift", "status": "rejected", "trigger_event_id": "e2"},
                {"version": "", "reason": "schedule", "status": "skipped"},
            ],
        },
        {
            "week": 53,
            "start": "1997-05-13",
            "drift_score": None,
            "accuracy": None,
            "champion_version": "2",
            "retrains": [],
        },
    ]
    versions = [
        {
            "version": "1",
            "reason": "manual",
            "status": "promoted",
            "tags": {"reason": "manual", "data_version": "abc123:md5", "gate_passed": "true"},
            "gate_report": "# Gate report: elec2 (manual)\n\npassed <floor>",
        },
        {
            "version": "2",
            "reason": "drift",
            "status": "promoted",
            "tags": {"reason": "drift", "trigger_event_id": "e1", "gate_passed": "true"},
            "gate_report": "",
        },
        {
            "version": "3",
            "reason": "drift",
            "status": "rejected",
            "tags": {
                "reason": "drift",
                "trigger_event_id": "e2",
                "gate_passed": "false",
                "gate_decision": json.dumps({"passed": False, "summary": "CI below tolerance"}),
            },
            "gate_report": "",
        },
    ]
    return weeks, versions


def test_report_is_self_contained_and_names_every_version() -> None:
    weeks, versions = synthetic_rows()
    page = report.build_report(weeks, versions, meta={"replayed weeks": "50-53"})
    assert page.startswith("<!DOCTYPE html>")
    assert "<script src=" not in page  # nothing loaded from the network
    assert len(page) > 1_000_000 and "Plotly" in page  # plotly.js is inlined
    assert f'id="{report.PLOT_DIV_ID}"' in page
    for v in versions:
        assert f'data-version="{v["version"]}"' in page
    assert "Gate report: elec2 (manual)" in page
    assert "passed &lt;floor&gt;" in page  # markdown is escaped, not injected
    assert "CI below tolerance" in page  # gate_decision tag used when the artifact is missing
    assert "abc123:md5" in page


def test_timeline_has_lines_and_markers_by_decision() -> None:
    weeks, _ = synthetic_rows()
    fig = report.timeline_figure(weeks)
    names = [t.name for t in fig.data]
    assert names[:2] == ["champion accuracy (prequential)", "drift score (max decile PSI)"]
    assert {"drift detected", "retrain: promoted", "retrain: rejected", "retrain: skipped"} <= set(names)
    rejected = next(t for t in fig.data if t.name == "retrain: rejected")
    assert list(rejected.x) == [52]
    assert rejected.marker.color == report.DECISION_COLORS["rejected"]
    skipped = next(t for t in fig.data if t.name == "retrain: skipped")
    assert list(skipped.y) == [0.70]


def test_summary_rows() -> None:
    weeks, _ = synthetic_rows()
    rows = report.summary_rows(weeks)
    assert rows[0] == [50, "1997-04-22", 0.4, "-", "-", "1", 0.81]
    assert rows[2][3] == "drift, schedule"
    assert rows[2][4] == "v3 rejected, skipped"


def test_empty_report() -> None:
    page = report.build_report([], [])
    assert "No model versions registered" in page
