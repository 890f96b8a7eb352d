"""benchmarks/load_account.py: how the load test accounts for events, runs and audit entries (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from benchmarks.load_account import Entry, Fired, Run, account, classify, percentile

T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
DRIFT, PERF = "evergreen.drift.detected", "evergreen.performance.degraded"


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def run(rid: str, model: str, dep: str, event: str, start: float, end: float) -> Run:
    return Run(rid, model, dep, event, at(start - 1), at(start), at(end), "COMPLETED")


def entry(model: str, action: str, rid: str, event: str, t: float) -> Entry:
    return Entry(model, action, at(t), rid, event)


def scenario() -> tuple[list[Fired], list[Run], list[Entry]]:
    fired = [
        Fired("e1", "a", DRIFT, at(0)),
        Fired("e2", "b", DRIFT, at(1)),
        Fired("e3", "a", DRIFT, at(5)),  # inside a's window, opened by e1
        Fired("e4", "a", PERF, at(6)),  # another automation: its own window
        Fired("e5", "b", DRIFT, at(7)),
    ]
    runs = [
        run("r1", "a", "a-p2", "e1", 2, 10),
        run("r2", "b", "b-p2", "e2", 3, 40),
        run("r4", "a", "a", "e4", 8, 12),
    ]
    entries = [
        entry("a", "skip", "r1", "e1", 9),
        entry("b", "promote", "r2", "e2", 39),
        entry("a", "skip", "r4", "e4", 11),
        entry("b", "ingest", None, None, 0),  # not a run's decision: ignored
    ]
    return fired, runs, entries


def test_every_event_is_classified_and_the_window_is_per_model_and_kind() -> None:
    fired, runs, _ = scenario()
    kinds = classify(fired, runs, within_s=600)
    assert kinds == {
        "e1": "started-run",
        "e2": "started-run",
        "e3": "in-window",
        "e4": "started-run",
        "e5": "in-window",
    }
    # past the window, an event that started no run is unexplained (lost by the automation)
    late = Fired("e6", "a", DRIFT, at(700))
    assert classify([*fired, late], runs, within_s=600)["e6"] == "unexplained"


def test_a_clean_run_has_no_failures_and_reports_latencies() -> None:
    fired, runs, entries = scenario()
    acc = account(
        fired, {f.id for f in fired}, runs, entries, within_s=600, in_cooldown={"a": True, "b": False}
    )
    assert acc.failures == []
    assert acc.events["lost"] == 0 and acc.events["started_run"] == 3
    assert acc.runs["decisions"] == {"skip": 2, "promote": 1}
    assert acc.latency_s["event_to_decision"]["max"] == 38.0
    assert acc.isolation["peak_models_running_at_once"] == 2
    assert acc.isolation["same_deployment_overlaps"] == 0


def test_lost_events_missing_decisions_and_cooldown_leaks_fail() -> None:
    fired, runs, entries = scenario()
    acc = account(
        fired,
        {"e1", "e2", "e3", "e4"},  # e5 never reached the server
        runs,
        [e for e in entries if e.flow_run_id != "r4"],  # r4's decision is not in the audit log
        within_s=600,
        in_cooldown={"a": True, "b": True},  # b trained although inside its cooldown
    )
    text = " | ".join(acc.failures)
    assert "not stored by the server" in text
    assert "no decision in the audit log" in text
    assert "inside their cooldown trained: ['b']" in text


def test_overlapping_runs_of_one_deployment_fail() -> None:
    fired, runs, entries = scenario()
    runs.append(run("r5", "a", "a-p2", "e3", 4, 6))  # overlaps r1 on a-p2
    entries.append(entry("a", "skip", "r5", "e3", 5))
    acc = account(
        fired, {f.id for f in fired}, runs, entries, within_s=600, in_cooldown={"a": True, "b": False}
    )
    assert acc.isolation["same_deployment_overlaps"] == 1


def test_percentile_nearest_rank() -> None:
    assert percentile([], 95) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0
