"""demo/timing.py: a flow run's phases from its state history, and the per-kind summary."""

from __future__ import annotations

from demo.timing import phases, summarize, summary_lines


def _state(kind: str, ts: str) -> dict:
    return {"type": kind, "timestamp": f"2026-12-04T07:00:{ts}+00:00"}


def test_phases_split_queue_startup_and_run():
    run = {"name": "r", "state_type": "COMPLETED", "created": "2026-12-04T07:00:00+00:00",
           "end_time": "2026-12-04T07:00:40+00:00"}  # fmt: skip
    states = [
        _state("COMPLETED", "40"),
        _state("RUNNING", "21"),
        _state("PENDING", "01"),
        _state("SCHEDULED", "00"),
    ]
    p = phases(run, states, "monitor")
    assert (p["queued"], p["startup"], p["run"], p["total"]) == (1.0, 20.0, 19.0, 40.0)


def test_a_run_still_running_has_no_run_phase_and_summary_skips_it():
    running = phases(
        {"name": "x", "created": "2026-12-04T07:00:00+00:00"}, [_state("PENDING", "02")], "retrain"
    )
    assert running["queued"] == 2.0 and running["startup"] is None and running["run"] is None
    done = {"kind": "retrain", "queued": 1.0, "startup": 10.0, "run": 5.0, "total": 16.0}
    s = summarize([running, done])
    assert s["retrain"]["runs"] == 2 and s["retrain"]["startup_median"] == 10.0
    assert s["retrain"]["queued_sum"] == 3.0
    assert summary_lines(s)[0].startswith("retrain: 2 runs; median queued 1.5s, process start-up 10.0s")
