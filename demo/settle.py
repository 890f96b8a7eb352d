"""One week's event chain: wait until ingest -> monitor -> automation retrains have all finished.

Settled when the monitor's `drift.measured` event arrived (if expected), no flow run of the demo's
deployments is scheduled/pending/running, and each trigger event either has a retrain outcome event
(promoted/rejected/skipped carrying its id), a finished retrain run, or has waited `trigger_grace`
seconds without producing one (an automation may deduplicate within its window). docs/demo.md
"When is a week settled?" says the same for users.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from demo.options import DemoError, DemoOptions
from demo.prefect_rest import ACTIVE_STATES, PrefectApi
from evergreen.events import VOLUME_LABEL, Event, resource_id

TRIGGER_EVENTS = {Event.DRIFT_DETECTED.value: "drift", Event.PERFORMANCE_DEGRADED.value: "performance"}
SHADOW_DECISIONS = {Event.SHADOW_PROMOTED.value: "promoted", Event.SHADOW_RETIRED.value: "retired"}
OUTCOME_EVENTS = {
    Event.MODEL_PROMOTED.value: "promoted",
    Event.MODEL_REJECTED.value: "rejected",
    Event.RETRAIN_SKIPPED.value: "skipped",
    Event.SHADOW_STARTED.value: "shadow",  # promotion.mode shadow: gate passed, alias `shadow`
}


@dataclass
class Settle:
    """What happened between `since` and the moment nothing was left running."""

    drift_score: float | None = None
    drift_detected: bool = False
    performance_degraded: bool = False
    monitor_seen: bool = False
    retrains: list[dict[str, Any]] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)  # trigger events that never became a run
    failed_runs: list[str] = field(default_factory=list)
    shadow: list[dict[str, Any]] = field(default_factory=list)  # shadow decisions (promoted / retired)


@dataclass
class Observed:
    """One poll of the events and flow runs since the week started."""

    settle: Settle  # the monitor's facts, from its drift.measured event
    triggers: dict[str, str] = field(default_factory=dict)  # trigger event id -> reason
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)  # trigger id or "run:<event id>"
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def active(self) -> list[dict[str, Any]]:
        return [r for r in self.runs if r.get("state_type") in ACTIVE_STATES]

    def finished_by_trigger(self) -> dict[str, dict[str, Any]]:
        """Finished runs that an automation started, by the trigger event id they carry."""
        return {
            str(_params(r)["trigger_event_id"]): r
            for r in self.runs
            if r.get("state_type") not in ACTIVE_STATES and _params(r).get("trigger_event_id")
        }


def _params(run: dict[str, Any]) -> dict[str, Any]:
    return run.get("parameters") or {}


def _read_monitor(out: Settle, payload: dict[str, Any]) -> None:
    out.monitor_seen = True
    if payload.get("drift_score") is not None:
        out.drift_score = round(float(payload["drift_score"]), 4)
    out.drift_detected = out.drift_detected or bool(payload.get("drift_detected"))
    out.performance_degraded = out.performance_degraded or bool(payload.get("performance_degraded"))


def _outcome(name: str, ev: dict[str, Any], payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(the trigger event id it answers, or run:<its own id> for an explicit run; the outcome row)."""
    key = str(payload.get("trigger_event_id") or f"run:{ev['id']}")
    return key, {
        "status": OUTCOME_EVENTS[name],
        "version": str(payload.get("version") or ""),
        "reason": str(payload.get("reason") or payload.get("requested_reason") or ""),
        "trigger_event_id": str(payload.get("trigger_event_id") or ""),
    }


def shadow_row(decision: str, ev: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """A shadow decision from its event: which version, promoted or retired, and why."""
    return {
        "decision": decision,
        "version": str(payload.get("version") or ""),
        "champion_version": str(payload.get("champion_version") or ""),
        "summary": str(payload.get("summary") or payload.get("reason") or ""),
        "event_id": str(ev.get("id") or ""),
    }


def classify(events: list[dict[str, Any]], runs: list[dict[str, Any]], model: str | None = None) -> Observed:
    """Sort the week's events into the monitor's facts, trigger events and retrain outcomes.

    With `model`, events on another model's resource are left out: the demo's models share one
    Prefect server, and another model's `model.promoted` of the same version number would otherwise
    show up in this model's row (and hide this model's own row of that version).
    """
    obs = Observed(settle=Settle(), runs=runs)
    mine = resource_id(model) if model else None
    for ev in events:
        if mine is not None and (ev.get("resource") or {}).get("prefect.resource.id") != mine:
            continue
        name, payload = str(ev.get("event")), ev.get("payload") or {}
        if name == Event.DRIFT_MEASURED:
            _read_monitor(obs.settle, payload)
        elif name in TRIGGER_EVENTS:
            obs.triggers[str(ev["id"])] = TRIGGER_EVENTS[name]
        elif name == Event.DATA_INGESTED and (ev.get("resource") or {}).get(VOLUME_LABEL) == "true":
            obs.triggers[str(ev["id"])] = "volume"
        elif name in OUTCOME_EVENTS:
            key, row = _outcome(name, ev, payload)
            obs.outcomes[key] = row
        elif name in SHADOW_DECISIONS:
            obs.settle.shadow.append(shadow_row(SHADOW_DECISIONS[name], ev, payload))
    return obs


def pending_triggers(obs: Observed, first_seen: dict[str, float], now: float, grace: float) -> list[str]:
    """Trigger events still waiting for their retrain; records failed runs and unanswered triggers."""
    finished = obs.finished_by_trigger()
    waiting = []
    for tid, reason in obs.triggers.items():
        first_seen.setdefault(tid, now)
        if tid in obs.outcomes:
            continue
        run = finished.get(tid)
        if run is not None:
            # its outcome event can reach the API a moment after the run ends; after the grace,
            # a run without one failed or crashed
            if ended_long_ago(run, grace):
                obs.settle.failed_runs.append(f"{run.get('name')} ({run.get('state_type')})")
            else:
                waiting.append(tid)
        elif now - first_seen[tid] < grace:
            waiting.append(tid)
        else:
            obs.settle.unanswered.append(reason)
    return waiting


def monitor_events_pending(obs: Observed, first_seen: dict[str, float], now: float, grace: float) -> bool:
    """drift.measured said drift/performance events follow; they may be persisted a moment later."""
    out = obs.settle
    if not out.monitor_seen:
        return False
    first_seen.setdefault("monitor", now)
    expected = {"drift"} if out.drift_detected else set()
    expected |= {"performance"} if out.performance_degraded else set()
    return bool(expected - set(obs.triggers.values())) and now - first_seen["monitor"] < grace


def explicit_runs_pending(obs: Observed, elapsed: float, opts: DemoOptions, expected: int) -> bool:
    """Explicitly started retrains whose outcome event (no trigger id) has not arrived yet."""
    untriggered = sum(1 for k in obs.outcomes if k.startswith("run:"))
    if untriggered >= expected or elapsed >= opts.trigger_grace + opts.run_timeout:
        return False
    # every run ended more than the grace ago and none is active: the run failed without an outcome
    gave_up = (
        not obs.active
        and elapsed > opts.trigger_grace
        and all(ended_long_ago(r, opts.trigger_grace) for r in obs.runs)
    )
    return not gave_up


def retrain_rows(obs: Observed) -> list[dict[str, Any]]:
    """One row per registered version (and per skipped retrain), with the reason of its trigger."""
    seen_versions: set[str] = set()
    rows = []
    for key, o in obs.outcomes.items():
        if o["version"] and o["version"] in seen_versions:
            continue
        seen_versions.add(o["version"])
        rows.append({**o, "reason": o["reason"] or obs.triggers.get(key, "")})
    return rows


def unreported(rows: list[dict[str, Any]], reported: set[str]) -> list[dict[str, Any]]:
    """Rows whose version no earlier step reported; adds theirs to `reported`.

    Each step's event window starts 1 s before it (clock slack), so a promotion seen just before a
    step ends can show up again in the next one; a registered version belongs to one row only.
    """
    fresh = [r for r in rows if not (r["version"] and r["version"] in reported)]
    reported.update(r["version"] for r in fresh if r["version"])
    return fresh


def settle(
    api: PrefectApi,
    dep_ids: list[str],
    since: datetime,
    opts: DemoOptions,
    expect_monitor: bool = True,
    expect_untriggered: int = 0,
    model: str | None = None,
) -> Settle:
    """Wait until the event chain that started at `since` has finished (see the module docstring).

    `expect_untriggered`: outcome events without a trigger id to wait for (explicitly started
    retrains, whose events may reach the API a moment after their run finished), up to the grace.
    `model`: only that model's events count (several models share the server).
    """
    t_begin = time.monotonic()
    first_seen: dict[str, float] = {}
    deadline = t_begin + opts.week_timeout
    while True:
        obs = classify(api.events(since, model=model), api.flow_runs(dep_ids, since), model)
        now = time.monotonic()
        waiting = pending_triggers(obs, first_seen, now, opts.trigger_grace)
        if monitor_events_pending(obs, first_seen, now, opts.trigger_grace):
            waiting.append("monitor-events")
        if explicit_runs_pending(obs, now - t_begin, opts, expect_untriggered):
            waiting.append("explicit-run")
        out, active = obs.settle, obs.active
        out.retrains = retrain_rows(obs)
        if (out.monitor_seen or not expect_monitor) and not active and not waiting:
            return out
        if now > deadline:
            raise DemoError(
                f"week did not settle within {opts.week_timeout:.0f}s: {len(active)} runs active "
                f"({', '.join(str(r.get('name')) for r in active)}), {len(waiting)} triggers waiting"
            )
        time.sleep(1.0)


def ended_long_ago(run: dict[str, Any], seconds: float) -> bool:
    """True when the run has an end time more than `seconds` ago."""
    end = run.get("end_time")
    if not end:
        return False
    try:
        ended = datetime.fromisoformat(str(end).replace("Z", "+00:00"))
    except ValueError:
        return False
    return (datetime.now(UTC) - ended).total_seconds() >= seconds
