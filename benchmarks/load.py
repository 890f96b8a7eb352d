"""Load test: N models receiving trigger events at once, on PostgreSQL-backed Prefect and MLflow.

    .venv/bin/python benchmarks/load.py                    # 20 models, 200 events/min, 10 minutes (make load)
    .venv/bin/python benchmarks/load.py --short            # 4 models, 60 events/min, 1 minute

Everything is real and on loopback: a fresh PostgreSQL database each for Prefect and MLflow (dropped
afterwards), a Prefect server, an MLflow server, `prefect deploy` of the deployments and automations that
`evergreen deployments render` writes for N copies of models/elec2.yaml (load00, load01, ...), the
per-model retrain locks, and one process worker. One Elec2 champion is trained in-process on weeks
0..9 and registered under every model name; most models were promoted 1 h ago (inside their 6 h
cooldown), `--free` of them 7 h ago (outside it: these retrain for real).

The generator emits `evergreen.drift.detected` and `evergreen.performance.degraded` events (what the
monitor emits after a batch), round-robin over the models at `--rate` a minute for `--minutes`, then
stops. The automations start retrain runs (per model: `for_each` on the resource, `within` 600 s); each
run decides (cooldown skip, or train -> gate -> promote/reject) and writes that decision to the audit
log. While the events flow, the test holds the retrain lock of one free model: the other free models
must still train and decide; the held one decides only after the lock is released.

Then benchmarks/load_account.py accounts for every event and run; the JSON goes to --out with the
machine facts and load averages. Exit 1 when an assertion failed. Every server and process started
here is stopped, and both databases are dropped, on any exit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.load_account import TRAINED, Entry, Fired, Run, account  # noqa: E402
from benchmarks.load_stack import POOL, LoadStack, clone_champion, deploy, log, seed_champion, write_specs  # noqa: E402
from stack.prefect_worker import WORKER_TYPE, WORKER_TYPES  # noqa: E402

PG_ADMIN = os.environ.get(
    "EVERGREEN_LOAD_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
EVENTS = ("evergreen.drift.detected", "evergreen.performance.degraded")
WITHIN_S = 600.0  # deployments.render.RETRAIN_WITHIN


def machine(loads: dict[str, Any]) -> dict[str, Any]:
    import psutil

    vm = psutil.virtual_memory()
    return {
        "cpus": os.cpu_count(),
        "memory_total_gib": round(vm.total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": loads,
        "note": "shared 2-core machine: other engineers' jobs may run at the same time",
    }


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ------------------------------------------------------------------------------------------- events


def fire(
    models: list[str], rate: float, minutes: float, tick: Any = None
) -> tuple[list[Fired], dict[str, Any]]:
    """Emit rate*minutes events at a steady pace, round-robin over the models; then flush and stop.
    `tick()` is called about every 5 s between events (the lock check)."""
    from prefect.events.worker import EventsWorker

    from adapters.prefect_api import emit

    total, interval = int(round(rate * minutes)), 60.0 / rate
    fired: list[Fired] = []
    lag = 0.0
    t0 = next_tick = time.monotonic()
    for k in range(total):
        due = t0 + k * interval
        if tick is not None and time.monotonic() >= next_tick:
            tick()
            next_tick = time.monotonic() + 5.0
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        lag = max(lag, time.monotonic() - due)
        model, kind = models[k % len(models)], EVENTS[(k // len(models)) % 2]
        payload = {"load_seq": k, "drift_score": 0.9, "drift_share": 0.6, "data_version": "load-test"}
        ev = emit(kind, model, payload)
        fired.append(Fired(str(ev.id), model, kind, ev.occurred))
    emitted_s = time.monotonic() - t0
    EventsWorker.drain_all(timeout=120)
    return fired, {
        "events": total,
        "target_per_minute": rate,
        "seconds": round(emitted_s, 1),
        "achieved_per_minute": round(total / emitted_s * 60, 1) if emitted_s else None,
        "max_lag_behind_schedule_s": round(lag, 3),
        "flush_s": round(time.monotonic() - t0 - emitted_s, 2),
    }


# --------------------------------------------------------------------------------------- flow runs


def read_runs(pool: str = POOL) -> list[Run]:
    """Every flow run of the work pool (all created by the automations), with its deployment id."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName

    out, offset = [], 0
    with get_client(sync_client=True) as c:
        while True:
            page = c.read_flow_runs(
                work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])),
                limit=200,
                offset=offset,
            )
            for r in page:
                p = r.parameters or {}
                out.append(
                    Run(
                        id=str(r.id),
                        model=str(p.get("model")),
                        deployment=str(r.deployment_id),  # names repeat across flows: the id
                        trigger_event_id=p.get("trigger_event_id"),
                        created=r.created or datetime.now(UTC),
                        start=r.start_time,
                        end=r.end_time,
                        state=r.state_type.value if r.state_type else "UNKNOWN",
                    )
                )
            if len(page) < 200:
                return out
            offset += 200


TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


STORE_WAIT_S = 120.0  # bound on waiting for the server to persist the last events it acknowledged


def wait_until(what: str, probe: Any, timeout: float, interval: float = 3.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            if not value:
                log(f"gave up waiting for {what} after {timeout:.0f}s")
            return value
        time.sleep(interval)


def settled(runs: list[Run]) -> bool:
    return bool(runs) and all(r.state in TERMINAL for r in runs)


def read_audit(models: list[str]) -> list[Entry]:
    from adapters import audit_log
    from evergreen.settings import get_settings

    out = []
    for model in models:
        for e in audit_log.read(get_settings(), model):
            ev = e.evidence
            out.append(
                Entry(model, e.action.value, e.time, ev.get("flow_run_id"), ev.get("trigger_event_id"))
            )
    return out


def settle_and_account(
    api_url: str,
    pool: str,
    fired: list[Fired],
    in_cooldown: dict[str, bool],
    lock_check: dict[str, Any],
    timeout: float,
) -> tuple[Any, list[Run], list[Entry], float]:
    """Wait (up to `timeout` s) until every model's first event of each kind has its run and every run
    is finished; then account for every event and run (load_account.account plus the lock check).
    Returns (accounting, runs, audit entries, seconds waited)."""
    from tests.support.prefect_events import read_events

    models = sorted(in_cooldown)
    expected = len({(e.model, e.event) for e in fired})
    t = time.monotonic()
    runs = wait_until(
        "every run to be created and finished",
        lambda: (rs := read_runs(pool)) and len(rs) >= expected and settled(rs) and rs,
        timeout,
    )
    runs = runs or read_runs(pool)
    drain_s = round(time.monotonic() - t, 1)

    def read_stored() -> set[str]:
        return {
            e["id"]
            for m in models
            for e in read_events(api_url, resource_id=f"evergreen.model.{m}", names=list(EVENTS))
        }

    # The server persists events in batches, after it has acknowledged them: when the runs settle
    # within seconds of the last emission, the newest events may not be readable yet. A lost event
    # never shows up, so waiting a bounded time for all of them cannot hide one.
    fired_ids = {e.id for e in fired}
    stored = (
        wait_until(
            "every emitted event to be readable",
            lambda: (s := read_stored()) >= fired_ids and s,
            STORE_WAIT_S,
        )
        or read_stored()
    )
    entries = read_audit(models)
    acc = account(fired, stored, runs, entries, within_s=WITHIN_S, in_cooldown=in_cooldown)
    _lock_failures(lock_check, runs, entries, acc.failures)
    return acc, runs, entries, drain_s


# -------------------------------------------------------------------------------------------- main


def hold_lock_while_firing(
    args: argparse.Namespace, models: list[str], free: list[str], pool: str = POOL
) -> tuple[Any, ...]:
    """Fire the events while holding the retrain lock of the first free model, until the other free
    models have decided (bounded by --drain-timeout); then release. Returns (fired, emission, check).
    `args` needs rate, minutes and drain_timeout (the CI form in tests/e2e passes its own)."""
    from adapters.prefect_lock import model_lock

    if len(free) < 2:
        fired, emission = fire(models, args.rate, args.minutes)
        return fired, emission, {"held": None}
    held, others = free[0], free[1:]
    lock = contextlib.ExitStack()
    lock.enter_context(model_lock(held, wait_seconds=60))
    state: dict[str, Any] = {"held": held, "others": others, "others_decided_while_held": False}

    def release_when_others_decided() -> bool:
        if "released_at" in state:
            return True
        runs = read_runs(pool)
        if {r.model for r in runs if r.model in others and r.state == "COMPLETED"} != set(others):
            return False
        state["others_decided_while_held"] = True
        state["held_model_runs_finished_while_held"] = sum(
            r.model == held and r.state in TERMINAL for r in runs
        )
        lock.close()
        state["released_at"] = datetime.now(UTC).isoformat()
        log(f"released {held}'s retrain lock: {others} decided meanwhile")
        return True

    try:
        fired, emission = fire(models, args.rate, args.minutes, tick=release_when_others_decided)
        wait_until("the other free models' runs", release_when_others_decided, args.drain_timeout)
    finally:
        if "released_at" not in state:
            runs = read_runs(pool)
            state["held_model_runs_finished_while_held"] = sum(
                r.model == held and r.state in TERMINAL for r in runs
            )
            lock.close()
            state["released_at"] = datetime.now(UTC).isoformat()
    return fired, emission, state


def main() -> int:  # noqa: PLR0915 - a linear script
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=int, default=20)
    ap.add_argument("--rate", type=float, default=200.0, help="events a minute, over all models")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--free", type=int, default=2, help="models outside their cooldown (real retrains)")
    ap.add_argument("--pool-limit", type=int, default=6, help="work pool concurrency limit (flow runs)")
    ap.add_argument("--drain-timeout", type=float, default=1800.0, help="bound on waiting for the runs")
    ap.add_argument("--short", action="store_true", help="4 models, 60 events a minute, 1 minute")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument(
        "--worker-type",
        default=WORKER_TYPE,
        choices=WORKER_TYPES,
        help="the worker (workers/prefork.py, as `evergreen up` starts it) or Prefect's own",
    )
    args = ap.parse_args()
    if args.short:
        args.models, args.rate, args.minutes = 4, 60.0, 1.0
    out = args.out or ROOT / "benchmarks" / "results" / ("load-short.json" if args.short else "load.json")
    if not 1 <= args.free <= args.models or args.rate <= 0 or args.minutes <= 0:
        sys.stderr.write("error: need 1 <= --free <= --models, and a positive --rate and --minutes\n")
        return 2
    loads: dict[str, Any] = {"start": loadavg()}
    t_all = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="evergreen-load-"))
    models = [f"load{i:02d}" for i in range(args.models)]
    free = models[-args.free :]
    in_cooldown = {m: m not in free for m in models}
    setup: dict[str, float] = {}
    with LoadStack(tmp) as st:
        t = time.monotonic()
        st.start(tmp / "models")
        setup["servers"] = round(time.monotonic() - t, 1)
        specs = write_specs(tmp / "models", ["load-seed", *models])
        t = time.monotonic()
        version = seed_champion(tmp, "load-seed")
        setup["seed_champion"] = round(time.monotonic() - t, 1)
        t = time.monotonic()
        for m in models:
            clone_champion("load-seed", version, m, timedelta(hours=7 if m in free else 1))
        setup["clone_champions"] = round(time.monotonic() - t, 1)
        st.pool(args.pool_limit, args.worker_type)
        setup["deploy"] = deploy(specs[1:], tmp, st.env)
        t = time.monotonic()
        st.worker(args.worker_type)
        setup["worker"] = round(time.monotonic() - t, 1)
        log(f"setup {setup}; firing {int(args.rate * args.minutes)} events over {args.minutes} min")
        loads["before_events"] = loadavg()
        fired, emission, lock_check = hold_lock_while_firing(args, models, free)
        loads["after_events"] = loadavg()
        log(f"emitted {emission}; waiting for the runs to finish")
        acc, runs, entries, drain_s = settle_and_account(
            st.api_url, POOL, fired, in_cooldown, lock_check, args.drain_timeout
        )
        loads["after_drain"] = loadavg()
        result = {
            "benchmark": "load",
            "command": " ".join(sys.argv) if len(sys.argv) > 1 else "make load",
            "config": {
                "models": args.models,
                "models_outside_cooldown": free,
                "events_per_minute": args.rate,
                "minutes": args.minutes,
                "event_kinds": list(EVENTS),
                "trigger_within_s": WITHIN_S,
                "work_pool_concurrency_limit": args.pool_limit,
                "worker_query_seconds": 2.0,
                "worker_type": args.worker_type,
                "backend": "PostgreSQL (Prefect and MLflow), loopback",
            },
            "setup_s": setup,
            "emission": emission,
            "drain_s": drain_s,
            "throughput": _throughput(fired, runs, entries),
            "run_seconds": _run_seconds(runs, entries),
            "lock_check": lock_check,
            **acc.as_dict(),
        }
        result["ok"] = not acc.failures
    result["wall_s"] = round(time.monotonic() - t_all, 1)
    result["machine"] = machine(loads)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    log(f"wrote {out}: ok={result['ok']} failures={result['failures']}")
    return 0 if result["ok"] else 1


def _lock_failures(check: dict[str, Any], runs: list[Run], entries: list[Entry], failures: list[str]) -> None:
    if not check.get("held"):
        return
    if not check["others_decided_while_held"]:
        failures.append(f"{check['others']} did not decide while {check['held']}'s lock was held")
    if check["held_model_runs_finished_while_held"]:
        failures.append(f"{check['held']} finished a retrain run while its lock was held")
    released = datetime.fromisoformat(check["released_at"])
    early = [e for e in entries if e.model == check["held"] and e.action in TRAINED and e.time < released]
    if early:
        failures.append(f"{check['held']} recorded {early[0].action} before its lock was released")


def _throughput(fired: list[Fired], runs: list[Run], entries: list[Entry]) -> dict[str, Any]:
    ids = {r.id for r in runs}
    decisions = [
        e for e in entries if e.flow_run_id in ids and e.action in ("skip", "promote", "reject-model")
    ]
    if not fired or not decisions:
        return {}
    t0 = min(e.occurred for e in fired)
    span = (max(e.time for e in decisions) - t0).total_seconds()
    ev_span = (max(e.occurred for e in fired) - t0).total_seconds() or 1.0
    return {
        "events_per_minute": round(len(fired) / ev_span * 60, 1),
        "decisions": len(decisions),
        "decisions_per_minute": round(len(decisions) / span * 60, 2) if span else None,
        "first_event_to_last_decision_s": round(span, 1),
    }


def _run_seconds(runs: list[Run], entries: list[Entry]) -> dict[str, Any]:
    """Created -> Running (queue + worker pick-up + pool limit) and Running -> end, per decision kind."""
    from benchmarks.load_account import decision_of, summary

    pending = [(r.start - r.created).total_seconds() for r in runs if r.start]
    by: dict[str, list[float]] = {}
    for r in runs:
        dec = decision_of(r, entries)
        if r.start and r.end and dec:
            by.setdefault(dec.action, []).append((r.end - r.start).total_seconds())
    return {"created_to_running": summary(pending), **{f"running_{k}": summary(v) for k, v in by.items()}}


if __name__ == "__main__":
    sys.exit(main())
