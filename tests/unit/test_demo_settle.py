"""The demo's week-settling rules on recorded event/run dicts (the shapes the Prefect REST API returns)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from demo.options import DemoOptions
from demo.settle import (
    classify,
    explicit_runs_pending,
    monitor_events_pending,
    pending_triggers,
    retrain_rows,
    unreported,
)

GRACE = 30.0


def _ev(eid: str, name: str, payload: dict | None = None, labels: dict[str, str] | None = None) -> dict:
    return {"id": eid, "event": name, "payload": payload or {}, "resource": labels or {}}


def _run(state: str, ended_ago: float | None = None, **params: str) -> dict:
    end = None if ended_ago is None else (datetime.now(UTC) - timedelta(seconds=ended_ago)).isoformat()
    return {"name": f"run-{state}", "state_type": state, "end_time": end, "parameters": params}


def test_classify_reads_monitor_triggers_and_outcomes():
    events = [
        _ev("m", "evergreen.drift.measured", {"drift_score": 0.31234, "drift_detected": True}),
        _ev("d", "evergreen.drift.detected"),
        _ev("v", "evergreen.data.ingested", labels={"evergreen.volume-threshold-met": "true"}),
        _ev("i", "evergreen.data.ingested", labels={"evergreen.volume-threshold-met": "false"}),
        _ev("p", "evergreen.model.promoted", {"trigger_event_id": "d", "version": "3", "reason": "drift"}),
        _ev("s", "evergreen.retrain.skipped", {"requested_reason": "schedule"}),
    ]
    obs = classify(events, [])
    assert obs.settle.monitor_seen and obs.settle.drift_detected and obs.settle.drift_score == 0.3123
    assert obs.triggers == {"d": "drift", "v": "volume"}
    assert obs.outcomes["d"]["status"] == "promoted" and obs.outcomes["run:s"]["reason"] == "schedule"
    assert [r["status"] for r in retrain_rows(obs)] == ["promoted", "skipped"]


def test_trigger_answered_waiting_failed_or_unanswered():
    events = [_ev(t, "evergreen.drift.detected") for t in ("answered", "fresh", "ran", "failed", "old")]
    events.append(_ev("o", "evergreen.model.rejected", {"trigger_event_id": "answered", "version": "2"}))
    runs = [
        _run("COMPLETED", ended_ago=1, trigger_event_id="ran"),
        _run("FAILED", ended_ago=60, trigger_event_id="failed"),
    ]
    obs = classify(events, runs)
    first_seen = {"old": 0.0}
    waiting = pending_triggers(obs, first_seen, now=100.0, grace=GRACE)
    assert waiting == ["fresh", "ran"]
    assert obs.settle.failed_runs == ["run-FAILED (FAILED)"] and obs.settle.unanswered == ["drift"]
    assert retrain_rows(obs) == [
        {"status": "rejected", "version": "2", "reason": "drift", "trigger_event_id": "answered"}
    ]


def test_monitor_events_wait_for_the_announced_trigger_up_to_the_grace():
    obs = classify([_ev("m", "evergreen.drift.measured", {"performance_degraded": True})], [])
    first_seen: dict[str, float] = {}
    assert monitor_events_pending(obs, first_seen, now=10.0, grace=GRACE)
    assert not monitor_events_pending(obs, first_seen, now=10.0 + GRACE, grace=GRACE)
    arrived = classify(
        [
            *[_ev("m", "evergreen.drift.measured", {"performance_degraded": True})],
            _ev("p", "evergreen.performance.degraded"),
        ],
        [],
    )
    assert not monitor_events_pending(arrived, {}, now=0.0, grace=GRACE)


def test_explicit_run_waits_for_its_outcome_unless_it_failed_silently():
    opts = DemoOptions(trigger_grace=GRACE, run_timeout=100.0)
    running = classify([], [_run("RUNNING")])
    assert explicit_runs_pending(running, elapsed=5.0, opts=opts, expected=1)
    done = classify([_ev("r", "evergreen.model.promoted", {"version": "4"})], [_run("COMPLETED", 1)])
    assert not explicit_runs_pending(done, elapsed=5.0, opts=opts, expected=1)
    silent = classify([], [_run("FAILED", ended_ago=GRACE + 5)])
    assert not explicit_runs_pending(silent, elapsed=GRACE + 10, opts=opts, expected=1)
    assert explicit_runs_pending(silent, elapsed=5.0, opts=opts, expected=1)
    assert not explicit_runs_pending(running, elapsed=GRACE + 100.0, opts=opts, expected=1)


def test_a_version_is_reported_once_across_steps():
    """The next step's event window overlaps the previous one by 1 s: its promotion is not shown twice."""
    reported: set[str] = set()
    week_48 = [{"status": "promoted", "version": "2", "reason": "drift", "trigger_event_id": "a"}]
    week_49 = [*week_48, {"status": "skipped", "version": "", "reason": "drift", "trigger_event_id": "b"}]
    assert unreported(week_48, reported) == week_48
    assert unreported(week_49, reported) == week_49[1:]
    assert unreported(week_49[1:], reported) == week_49[1:]  # skips carry no version: always shown


def test_a_model_row_never_shows_another_models_outcomes():
    """Two models on one server, both at v21: each row lists its own model's outcome only.

    Without the model filter elec2's step saw bike_sharing's events too (the event query had no
    resource filter), so a week's row could list another model's `v21 promoted` beside its own.
    """

    def ev(eid: str, name: str, model: str, payload: dict) -> dict:
        return {
            "id": eid,
            "event": name,
            "payload": payload,
            "resource": {"prefect.resource.id": f"evergreen.model.{model}"},
        }

    events = [
        ev("de", "evergreen.drift.detected", "elec2", {}),
        ev("db", "evergreen.drift.detected", "bike_sharing", {}),
        ev("pe", "evergreen.model.promoted", "elec2", {"trigger_event_id": "de", "version": "21"}),
        ev("pb", "evergreen.model.promoted", "bike_sharing", {"trigger_event_id": "db", "version": "21"}),
        ev("sb", "evergreen.model.promoted", "bike_sharing", {"version": "22", "reason": "schedule"}),
    ]
    elec2 = retrain_rows(classify(events, [], model="elec2"))
    bike = retrain_rows(classify(events, [], model="bike_sharing"))
    assert elec2 == [{"status": "promoted", "version": "21", "reason": "drift", "trigger_event_id": "de"}]
    assert [(r["version"], r["reason"]) for r in bike] == [("21", "drift"), ("22", "schedule")]
    # each model reports its own v21 once, in its own row
    assert unreported(elec2, set()) == elec2 and len(unreported(bike, {"22"})) == 1
