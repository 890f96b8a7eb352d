"""The demo's release path, pure parts: spec overrides, message rows, shadow decisions, report section."""

from __future__ import annotations

from pathlib import Path

import yaml

from demo.environment import demo_models_dir
from demo.options import DemoOptions
from demo.release import BLOCK, message_row, notified_events, spec_overrides
from demo.settle import classify
from evergreen.reports.demo import build_report, summary_rows
from evergreen.reports.release import release_section
from evergreen.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]


def test_spec_overrides_notify_both_models_and_shadow_one():
    opts = DemoOptions(shadow_batches=2)
    out = spec_overrides(opts)
    assert set(out) == {"elec2", "bike_sharing"}
    assert out["elec2"]["promotion"] == {"mode": "shadow", "shadow_batches": 2}
    assert "promotion" not in out["bike_sharing"]
    assert out["bike_sharing"]["notifications"] == {"block": BLOCK, "on": list(opts.notify_on)}
    assert spec_overrides(DemoOptions(notify=False, shadow_model=None, side_model=None)) == {"elec2": {}}
    assert "evergreen.shadow.retired" in notified_events(opts)
    assert "evergreen.drift.detected" not in notified_events(opts)  # drift fires most weeks: left out


def test_demo_spec_copy_is_a_valid_spec_with_the_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("EVERGREEN_MODELS_DIR", str(ROOT / "models"))
    out = demo_models_dir(ROOT, tmp_path, "1s", spec_overrides(DemoOptions()))
    spec = load_spec("elec2", out)
    assert spec.promotion.mode == "shadow" and spec.promotion.shadow_batches == 1
    assert spec.notifications.block == BLOCK and spec.triggers.cooldown == "1s"
    assert load_spec("bike_sharing", out).promotion.mode == "direct"
    head = (out / "elec2.yaml").read_text().splitlines()[0]
    assert head.startswith("# demo copy of") and "promotion = " in head and "notifications = " in head
    assert yaml.safe_load((out / "elec2.yaml").read_text())["name"] == "elec2"


def test_message_row_reads_the_footer_of_a_delivered_message():
    body = (
        "elec2: version 4 is the champion now.\n\nevent: evergreen.model.promoted\nmodel: elec2\nversion: 4\n"
    )
    row = message_row(
        {"received_at": "2026-01-01T00:00:00", "subject": "[evergreen] elec2: v4", "body": body}
    )
    assert row["event"] == "evergreen.model.promoted" and row["model"] == "elec2" and row["version"] == "4"
    assert message_row({"subject": "x"})["event"] == ""


def test_shadow_decisions_are_read_from_events_and_shown_in_the_report():
    events = [
        {
            "id": "a",
            "event": "evergreen.shadow.retired",
            "payload": {"version": "5", "champion_version": "4"},
        },
        {"id": "b", "event": "evergreen.shadow.promoted", "payload": {"version": "6", "summary": "better"}},
    ]
    shadow = classify(events, []).settle.shadow
    assert [(d["version"], d["decision"]) for d in shadow] == [("5", "retired"), ("6", "promoted")]
    week = {"week": 50, "start": "1997-04-22", "retrains": [], "shadow": shadow}
    assert summary_rows([week])[0][4] == "shadow v5 retired, shadow v6 promoted"
    notes = [{"received_at": "2026", "model": "elec2", "event": "evergreen.shadow.promoted", "subject": "s"}]
    section = release_section(shadow, notes, {"block": f"custom-webhook/{BLOCK}", "expected": 1})
    assert "Shadow decisions" in section and "1 notifications delivered of 1" in section
    page = build_report([week], [], appendix=section)
    assert 'id="release-path"' in page and "evergreen.shadow.promoted" in page
    assert release_section([], [], {}) == ""
