"""Accounting for the load test (benchmarks/load.py): pure, no servers, no Prefect import.

Given what the load generator emitted, what the Prefect server stored, the flow runs the automations
created and the audit log, say for every event what became of it, and check the three promises:

- no event is lost: every emitted id is stored by the server, and each one either started a retrain
  run (its id is the run's ``trigger_event_id``) or fell inside the ``within`` window that an earlier
  event of the SAME model and the same automation opened (the trigger's per-model deduplication);
- every decision is in the audit log: every run the automations created has its decision entry
  (``skip``, ``promote``, ``reject-model``, ``shadow``) with that run's ``flow_run_id``;
- no model's cooldown or concurrency leaks into another's: models inside their cooldown only skip,
  models outside it train (once one of a model's runs promotes, its other runs skip: its own cooldown); each model's first event of each kind starts a run whatever the other
  models are doing; runs of one deployment never overlap, runs of different models do.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

DECISIONS = ("skip", "promote", "reject-model", "shadow")
TRAINED = ("promote", "reject-model", "shadow")


@dataclass(frozen=True)
class Fired:
    """One event the generator emitted."""

    id: str
    model: str
    event: str
    occurred: datetime


@dataclass(frozen=True)
class Run:
    """One flow run an automation created."""

    id: str
    model: str
    deployment: str
    trigger_event_id: str | None
    created: datetime
    start: datetime | None
    end: datetime | None
    state: str


@dataclass(frozen=True)
class Entry:
    """One audit entry (only the fields the accounting needs)."""

    model: str
    action: str
    time: datetime
    flow_run_id: str | None
    trigger_event_id: str | None


@dataclass
class Accounting:
    events: dict[str, Any] = field(default_factory=dict)
    runs: dict[str, Any] = field(default_factory=dict)
    latency_s: dict[str, Any] = field(default_factory=dict)
    isolation: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "runs": self.runs,
            "latency_s": self.latency_s,
            "isolation": self.isolation,
            "failures": self.failures,
            "ok": not self.failures,
        }


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by the nearest-rank method; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100), at least 1
    return round(float(ordered[int(rank) - 1]), 3)


def summary(values: Sequence[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": round(max(values), 3) if values else None,
    }


def classify(fired: Sequence[Fired], runs: Sequence[Run], within_s: float) -> dict[str, str]:
    """{event id: "started-run" | "in-window" | "unexplained"} per emitted event.

    An event is in-window when an earlier event of the same model and kind started a run less than
    `within_s` seconds before it (Prefect's reactive trigger: after firing, the next bucket opens at
    the end of the current one, and events before that are ignored for that bucketing key only)."""
    started = {r.trigger_event_id for r in runs if r.trigger_event_id}
    out: dict[str, str] = {}
    opened: dict[tuple[str, str], datetime] = {}
    for ev in sorted(fired, key=lambda e: e.occurred):
        key = (ev.model, ev.event)
        if ev.id in started:
            out[ev.id] = "started-run"
            opened[key] = ev.occurred
        elif key in opened and (ev.occurred - opened[key]).total_seconds() < within_s + 1.0:
            out[ev.id] = "in-window"
        else:
            out[ev.id] = "unexplained"
    return out


def decision_of(run: Run, entries: Iterable[Entry]) -> Entry | None:
    """The run's decision entry (the earliest one, if a retry wrote more)."""
    mine = [e for e in entries if e.flow_run_id == run.id and e.action in DECISIONS]
    return min(mine, key=lambda e: e.time) if mine else None


def _overlap(a: Run, b: Run) -> bool:
    if a.start is None or b.start is None or a.end is None or b.end is None:
        return False
    return a.start < b.end and b.start < a.end


def account(
    fired: Sequence[Fired],
    stored_ids: set[str],
    runs: Sequence[Run],
    entries: Sequence[Entry],
    *,
    within_s: float,
    in_cooldown: Mapping[str, bool],
) -> Accounting:
    acc = Accounting()
    by_id = {e.id: e for e in fired}

    # 1. no event is lost
    lost = sorted(set(by_id) - stored_ids)
    kinds = classify(fired, runs, within_s)
    counts: dict[str, int] = defaultdict(int)
    for k in kinds.values():
        counts[k] += 1
    acc.events = {
        "emitted": len(fired),
        "stored_by_server": len(set(by_id) & stored_ids),
        "lost": len(lost),
        "started_run": counts["started-run"],
        "in_trigger_window": counts["in-window"],
        "unexplained": counts["unexplained"],
    }
    if lost:
        acc.failures.append(f"{len(lost)} emitted events not stored by the server, e.g. {lost[:3]}")
    if counts["unexplained"]:
        bad = [i for i, k in kinds.items() if k == "unexplained"][:3]
        acc.failures.append(
            f"{counts['unexplained']} events neither started a run nor fell in a window: {bad}"
        )

    # 2. every decision is in the audit log
    states: dict[str, int] = defaultdict(int)
    actions: dict[str, int] = defaultdict(int)
    to_run, to_decision = [], []
    missing = []
    for run in runs:
        states[run.state] += 1
        ev = by_id.get(run.trigger_event_id or "")
        if ev is None:
            acc.failures.append(f"run {run.id} of {run.model} has no emitted trigger event")
            continue
        to_run.append((run.created - ev.occurred).total_seconds())
        dec = decision_of(run, entries)
        if dec is None:
            missing.append(run.id)
            continue
        actions[dec.action] += 1
        to_decision.append((dec.time - ev.occurred).total_seconds())
        if dec.trigger_event_id not in (None, run.trigger_event_id):
            acc.failures.append(f"run {run.id}: audit names trigger {dec.trigger_event_id}")
    acc.runs = {"created": len(runs), "states": dict(states), "decisions": dict(actions)}
    acc.runs["without_audit_decision"] = len(missing)
    if missing:
        acc.failures.append(f"{len(missing)} runs have no decision in the audit log: {missing[:3]}")
    acc.latency_s = {"event_to_run_created": summary(to_run), "event_to_decision": summary(to_decision)}

    # 3. isolation: cooldown, automation buckets, concurrency
    acc.isolation = _isolation(fired, runs, entries, in_cooldown, acc.failures)
    return acc


def _isolation(
    fired: Sequence[Fired],
    runs: Sequence[Run],
    entries: Sequence[Entry],
    in_cooldown: Mapping[str, bool],
    failures: list[str],
) -> dict[str, Any]:
    decided: dict[str, list[str]] = defaultdict(list)
    for run in runs:
        dec = decision_of(run, entries)
        if dec is not None:
            decided[run.model].append(dec.action)
    cooldown_trained = sorted(m for m, c in in_cooldown.items() if c and set(decided[m]) & set(TRAINED))
    free_never_trained = sorted(
        m for m, c in in_cooldown.items() if not c and not set(decided[m]) & set(TRAINED)
    )
    if cooldown_trained:
        failures.append(f"models inside their cooldown trained: {cooldown_trained}")
    if free_never_trained:
        failures.append(f"models outside their cooldown never trained: {free_never_trained}")

    # every model's first event of each kind started a run, whatever the others were doing
    first: dict[tuple[str, str], Fired] = {}
    for ev in sorted(fired, key=lambda e: e.occurred):
        first.setdefault((ev.model, ev.event), ev)
    started = {r.trigger_event_id for r in runs}
    not_started = sorted(f"{m}:{e}" for (m, e), ev in first.items() if ev.id not in started)
    if not_started:
        failures.append(f"first events that started no run: {not_started[:5]}")

    # deployment concurrency (1 per deployment) holds within a deployment and not across models
    by_dep: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        by_dep[run.deployment].append(run)
    same_dep_overlaps = sum(
        _overlap(a, b) for rs in by_dep.values() for i, a in enumerate(rs) for b in rs[i + 1 :]
    )
    if same_dep_overlaps:
        failures.append(f"{same_dep_overlaps} pairs of runs of one deployment overlapped")
    peak = _peak_models(runs)
    return {
        "models_in_cooldown": sum(1 for c in in_cooldown.values() if c),
        "models_outside_cooldown": sum(1 for c in in_cooldown.values() if not c),
        "cooldown_models_that_trained": cooldown_trained,
        "free_models_that_never_trained": free_never_trained,
        "first_events_without_run": not_started,
        "same_deployment_overlaps": same_dep_overlaps,
        "peak_models_running_at_once": peak,
    }


def _peak_models(runs: Sequence[Run]) -> int:
    """The most distinct models with a run in Running at the same instant."""
    points = sorted({r.start for r in runs if r.start and r.end})
    best = 0
    for t in points:
        models = {r.model for r in runs if r.start and r.end and r.start <= t < r.end}
        best = max(best, len(models))
    return best
