"""Where a demo's time goes: each flow run's phases from its Prefect state history.

A deployment run goes Scheduled (created by an automation or the demo) -> Pending (a worker picked
it up: polling) -> Running (the flow-run process started, imported its code and entered the flow:
process start-up) -> Completed/Failed (the flow's own work). `phases` turns one run and its states
into those three intervals; `summarize` groups them by deployment kind (ingest, monitor, retrain).
`evergreen demo` prints the summary at the end and stores it under `timing` in demo.json;
`benchmarks/demo_timing.py` runs a demo and writes it to benchmarks/results/.
"""

from __future__ import annotations

import statistics
from datetime import datetime
from typing import Any

PHASES = ("queued", "startup", "run", "total")


def _t(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _secs(a: datetime | None, b: datetime | None) -> float | None:
    return None if a is None or b is None else round((b - a).total_seconds(), 2)


def phases(run: dict[str, Any], states: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """One run's intervals in seconds: queued (created -> Pending), startup (Pending -> Running),
    run (Running -> its end), total (created -> end); None where a state is missing."""
    first: dict[str, datetime] = {}
    for s in sorted(states, key=lambda s: str(s.get("timestamp"))):
        ts = _t(s.get("timestamp"))
        if ts is not None:
            first.setdefault(str(s.get("type")), ts)
    created = _t(run.get("created")) or first.get("SCHEDULED")
    end = _t(run.get("end_time"))
    pending, running = first.get("PENDING"), first.get("RUNNING")
    return {
        "kind": kind,
        "name": str(run.get("name") or ""),
        "state": str(run.get("state_type") or ""),
        "created": created.isoformat() if created else None,
        "queued": _secs(created, pending),
        "startup": _secs(pending, running),
        "run": _secs(running, end),
        "total": _secs(created, end),
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per kind: the number of runs and the median and sum of each phase."""
    out: dict[str, dict[str, Any]] = {}
    for kind in sorted({r["kind"] for r in rows}):
        mine = [r for r in rows if r["kind"] == kind]
        entry: dict[str, Any] = {"runs": len(mine)}
        for p in PHASES:
            vals = [float(r[p]) for r in mine if r.get(p) is not None]
            entry[f"{p}_median"] = round(statistics.median(vals), 1) if vals else None
            entry[f"{p}_sum"] = round(sum(vals), 1)
        out[kind] = entry
    return out


def summary_lines(summary: dict[str, dict[str, Any]]) -> list[str]:
    """The summary as text lines, one per kind."""
    lines = []
    for kind, e in summary.items():
        lines.append(
            f"{kind}: {e['runs']} runs; median queued {e['queued_median']}s, process start-up "
            f"{e['startup_median']}s, run {e['run_median']}s (sums {e['queued_sum']}s / "
            f"{e['startup_sum']}s / {e['run_sum']}s)"
        )
    return lines


def collect(api: Any, kinds: dict[str, str], since: datetime) -> list[dict[str, Any]]:
    """Phases of every run of the deployments in `kinds` (deployment id -> kind) since `since`."""
    rows = []
    for run in api.flow_runs(list(kinds), since, limit=1000):
        kind = kinds.get(str(run.get("deployment_id")), "other")
        rows.append(phases(run, api.flow_run_states(str(run["id"])), kind))
    return sorted(rows, key=lambda r: str(r["created"]))
