"""Event -> retrain flow run `Running` -> `promoted`, through the real automation, per worker type.

One run of this script:

1. creates a fresh PostgreSQL database for Prefect and one for MLflow (`evergreen_bench_<pid>`,
   `evergreen_bench_<pid>_mlflow` on 127.0.0.1:5432; both dropped at the end) and starts a Prefect
   server and an MLflow server on them (free loopback ports);
2. in this process, ingests Elec2 but its last `--reps` weeks (GX + DVC) and retrains once per
   variant: the champions;
3. per variant, renders prefect.yaml for the variant's model alone (models/elec2.yaml as
   `elec2-<variant>`, `triggers.cooldown: 1s`, so each repetition may promote), creates the variant's
   work pool of its worker type, deploys with `prefect --no-prompt deploy --all` from the variant's
   checkout, sets the retrain automations' `within` to `--within` seconds (prefect.yaml's 600 would
   absorb every repetition after the first), creates the concurrency limits and work queues, and starts
   one worker of that type on its own pool, polling every `--query-seconds`;
4. `--reps` rounds: ingests the next Elec2 week (so the gate has rows neither model has seen; the
   monitor-on-ingest automations are disabled, so that ingest starts no run), then, the variants
   interleaved (same machine load for all; the order alternates between rounds), emits
   `evergreen.drift.detected` for the variant's model and times, from the event's `occurred`: the flow
   run's creation (the automation), `Pending` (the worker took it), `Running` (the flow-run process
   imported the flow and started it), the retrain's first task, the `evergreen.model.promoted` event
   (the champion alias moved and the audit entry was written just before it), and `Completed`.

Variants, one per `--worker-types` entry, all from this checkout: `process` (Prefect's process worker:
`python -m prefect.runner._workspace_supervisor`, which execs `python -m prefect.engine`, per run) and
`evergreen-process` (workers/prefork.py: the run forked from a forkserver that preloaded Prefect's
engine, pandas, scikit-learn, LightGBM, MLflow, GX and DVC). The summary gives each variant's medians
and the ratio evergreen-process / process of the `running_s`, `first_task_s` and `promoted_s` medians.
With `--before-root DIR`, a `before` variant runs another checkout of the code (e.g.
`git archive <sha> | tar -x -C DIR`) as model `elec2-before` on a `process` worker (older checkouts
have no `evergreen-process`). The import table of benchmarks/event_imports.py (what a fresh flow-run
process imports) is measured once per code checkout (`--import-reps 0` skips it).

    .venv/bin/python benchmarks/event_latency.py --reps 5                        # process vs evergreen-process
    .venv/bin/python benchmarks/event_latency.py --worker-types evergreen-process
    git archive 2460f05 | (mkdir -p /tmp/before && tar -x -C /tmp/before)
    .venv/bin/python benchmarks/event_latency.py --before-root /tmp/before       # + the older code
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.event_imports import measure_imports  # noqa: E402

MODEL = "elec2"
POOL = "evergreen-bench"
OUT = ROOT / "benchmarks" / "results" / "event_latency.json"
GOALS = {"running_s": 3.0, "promoted_s": 15.0}
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _api(method: str, url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (loopback)
        raw = resp.read()
    return json.loads(raw) if raw else None


def _ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


@contextmanager
def databases(pid: int) -> Iterator[tuple[str, str]]:
    """Fresh Prefect and MLflow databases, dropped afterwards."""
    import stack

    names = (f"evergreen_bench_{pid}", f"evergreen_bench_{pid}_mlflow")
    stack.create_postgres_database(names[0])
    stack.create_postgres_database(names[1], extensions=())
    try:
        yield (
            f"postgresql+asyncpg://postgres@127.0.0.1:5432/{names[0]}",
            f"postgresql://postgres@127.0.0.1:5432/{names[1]}",
        )
    finally:
        for name in names:
            stack.drop_postgres_database(name)


@contextmanager
def servers(tmp: Path, prefect_db: str, mlflow_db: str) -> Iterator[dict[str, str]]:
    """Prefect (PostgreSQL) and MLflow (PostgreSQL) on free ports; the env points this process at them."""
    import stack

    pport, mport = stack.free_port(), stack.free_port()
    prefect = stack.start_prefect_server(
        pport, tmp / "prefect", database_url=prefect_db, log_path=tmp / "prefect.log", wait=False
    )
    mlflow_srv = stack.start_mlflow_server(
        mport,
        backend_store_uri=mlflow_db,
        artifacts_destination=tmp / "artifacts",
        log_path=tmp / "mlflow.log",
        wait=False,
    )
    try:
        prefect.wait_healthy(300)
        mlflow_srv.wait_healthy(300)
        env = {
            "PREFECT_API_URL": f"http://127.0.0.1:{pport}/api",
            "PREFECT_HOME": str(tmp / "prefect-client"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mport}",
            "EVERGREEN_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mport}",
            "EVERGREEN_HOME": str(tmp / "home"),
            "EVERGREEN_MODELS_DIR": str(tmp / "models"),
            "EVERGREEN_WORK_POOL": POOL,
            "PREFECT_LOGGING_LEVEL": "WARNING",
        }
        os.environ.update(env)
        yield env
    finally:
        prefect.stop()
        mlflow_srv.stop()


def bench_spec(models_dir: Path, name: str) -> Any:
    """models/elec2.yaml as `name` with a 1 s cooldown (the shipped 27D would skip every repetition)."""
    import yaml

    from evergreen.spec import parse_spec

    raw = yaml.safe_load((ROOT / "models" / f"{MODEL}.yaml").read_text())
    raw["name"] = name  # data.path stays elec2: every variant reads the same data
    raw["triggers"]["cooldown"] = "1s"
    models_dir.mkdir(parents=True, exist_ok=True)
    (models_dir / f"{name}.yaml").write_text(yaml.safe_dump(raw))
    return parse_spec(raw)


def elec2_weeks(keep_last: int) -> tuple[Any, list[Any]]:
    """Elec2 without its last `keep_last` weeks (the seed), and those weeks (one per round)."""
    import pandas as pd

    from evergreen.datasets import prepare_elec2

    frame = prepare_elec2(ROOT / "seeds" / "elec2" / "electricity.csv")
    end = frame["timestamp"].max()
    cuts = [end - pd.Timedelta(days=7 * k) for k in range(keep_last, -1, -1)]
    weeks = [
        frame[(frame["timestamp"] > a) & (frame["timestamp"] <= b)]
        for a, b in zip(cuts, cuts[1:], strict=False)
    ]
    return frame[frame["timestamp"] <= cuts[0]], weeks


def ingest(tmp: Path, model: str, frame: Any, name: str) -> str:
    from flows.ingest import ingest as ingest_flow

    path = tmp / f"{name}.parquet"
    frame.to_parquet(path, index=False)
    return str(ingest_flow(model=model, path=str(path))["status"])


def seed_champions(tmp: Path, models: list[str], history: Any) -> dict[str, Any]:
    """Elec2's history through the ingest flow, then one retrain per model: the champions (in this process)."""
    from flows.retrain import retrain

    t = time.perf_counter()
    out: dict[str, Any] = {"rows": len(history), "ingest": ingest(tmp, models[0], history, "history")}
    for model in models:
        out[f"retrain {model}"] = retrain(model=model, reason="manual")["status"]
    out["seconds"] = round(time.perf_counter() - t, 1)
    return out


def deploy(
    tmp: Path, spec: Any, pool: str, worker_type: str, env: dict[str, str], root: Path, within: float
) -> dict[str, Any]:
    """Work pool (of `worker_type`) + queues, `prefect deploy` of the model from `root`, automations' `within`."""
    import stack
    from deployments import render_prefect_yaml, work_queues
    from stack import queues
    from stack.deploy import deploy_prefect_file

    api = env["PREFECT_API_URL"]
    stack.create_work_pool(api, pool, env={**os.environ, **env}, worker_type=worker_type)
    queues.ensure_work_queues(api, pool, work_queues())
    prefect_file = tmp / f"prefect-{spec.name}.yaml"
    prefect_file.write_text(render_prefect_yaml([spec], work_pool=pool))
    deploy_s = deploy_prefect_file(prefect_file, env, cwd=root)
    changed = []
    for auto in _api("POST", f"{api}/automations/filter", {"limit": 200}) or []:
        trig = auto.get("trigger") or {}
        match = (trig.get("match") or {}).get("prefect.resource.id")
        if trig.get("type") != "event" or match != f"evergreen.model.{spec.name}":
            continue
        trig["within"] = within
        # the benchmark ingests a week before each round; its monitor run would add runs and events
        auto["enabled"] = "monitor-on-ingest" not in str(auto["name"])
        keys = ("name", "description", "enabled", "tags", "trigger", "actions")
        _api("PUT", f"{api}/automations/{auto['id']}", {k: auto[k] for k in keys if k in auto})
        changed.append(f"{auto['name']}{'' if auto['enabled'] else ' (disabled)'}")
    return {"deploy_s": round(deploy_s, 1), "automations": {"within_s": within, "changed": changed}}


def find_run(api: str, event_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = {"limit": 20, "sort": "EXPECTED_START_TIME_DESC"}
        for run in _api("POST", f"{api}/flow_runs/filter", body) or []:
            if (run.get("parameters") or {}).get("trigger_event_id") == event_id:
                return dict(run)
        time.sleep(0.1)
    raise TimeoutError(f"no flow run for event {event_id} within {timeout:.0f}s")


def wait_terminal(api: str, run_id: str, timeout: float = 900) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = _api("GET", f"{api}/flow_runs/{run_id}")
        if run["state_type"] in TERMINAL:
            return dict(run)
        time.sleep(0.5)
    raise TimeoutError(f"flow run {run_id} did not finish within {timeout:.0f}s")


def verdict_event(api: str, model: str, event_id: str, timeout: float = 60) -> dict[str, Any] | None:
    names = ["evergreen.model.promoted", "evergreen.model.rejected", "evergreen.retrain.skipped"]
    flt = {"resource": {"id": [f"evergreen.model.{model}"]}, "event": {"name": names}, "order": "DESC"}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = _api("POST", f"{api}/events/filter", {"filter": flt, "limit": 50})
        for ev in page["events"]:
            if (ev.get("payload") or {}).get("trigger_event_id") == event_id:
                return dict(ev)
        time.sleep(0.5)
    return None


def one_event(api: str, model: str, i: int) -> dict[str, Any]:
    """Emit one drift event; the times (seconds after the event's `occurred`) of each milestone."""
    from prefect.events.worker import EventsWorker

    from adapters.prefect_api import emit
    from evergreen.events import Event

    ev = emit(Event.DRIFT_DETECTED, model, {"benchmark": "event_latency", "repetition": i})
    EventsWorker.drain_all(timeout=60)
    t0, event_id = ev.occurred.timestamp(), str(ev.id)
    run = wait_terminal(api, find_run(api, event_id)["id"])
    states = _api("GET", f"{api}/flow_run_states/?flow_run_id={run['id']}") or []
    first: dict[str, float | None] = {}
    for st in sorted(states, key=lambda s: s["timestamp"]):
        first.setdefault(st["type"], _ts(st["timestamp"]))
    tasks = _api("POST", f"{api}/task_runs/filter", {"flow_runs": {"id": {"any_": [run["id"]]}}}) or []
    starts = sorted(filter(None, (_ts(t.get("start_time")) for t in tasks)))
    verdict = verdict_event(api, model, event_id)

    def rel(t: float | None) -> float | None:
        return None if t is None else round(t - t0, 3)

    return {
        "event_id": event_id,
        "flow_run": run["name"],
        "state": run["state_type"],
        "verdict": None if verdict is None else verdict["event"],
        "created_s": rel(_ts(run["created"])),
        "pending_s": rel(first.get("PENDING")),
        "running_s": rel(first.get("RUNNING")),
        "first_task_s": rel(starts[0] if starts else None),
        "promoted_s": rel(_ts(verdict["occurred"]))
        if verdict and verdict["event"].endswith("promoted")
        else None,
        "completed_s": rel(first.get("COMPLETED")),
        "task_runs": len(tasks),
    }


def summarise(reps: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ["created_s", "pending_s", "running_s", "first_task_s", "promoted_s", "completed_s"]
    out: dict[str, Any] = {}
    for k in keys:
        vals = [r[k] for r in reps if r.get(k) is not None]
        if vals:
            out[k] = {"median": round(statistics.median(vals), 3), "max": round(max(vals), 3), "n": len(vals)}
    gaps = {
        "automation (event -> created)": ("created_s", None),
        "worker poll (created -> Pending)": ("pending_s", "created_s"),
        "process start + imports (Pending -> Running)": ("running_s", "pending_s"),
        "Running -> first task": ("first_task_s", "running_s"),
        "retrain work (first task -> promoted)": ("promoted_s", "first_task_s"),
    }
    steps = {}
    for name, (b, a) in gaps.items():
        vals = [
            r[b] - (r[a] if a else 0.0)
            for r in reps
            if r.get(b) is not None and (a is None or r.get(a) is not None)
        ]
        if vals:
            steps[name] = round(statistics.median(vals), 3)
    out["median_steps_s"] = steps
    for goal, limit in GOALS.items():
        if goal in out:
            out[f"goal_{goal}"] = {"limit": limit, "met_by_median": out[goal]["median"] <= limit}
    return out


def machine() -> dict[str, Any]:
    import psutil

    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    from importlib.metadata import version

    return {
        "cpus": os.cpu_count(),
        "memory_total_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "prefect": version("prefect"),
        "mlflow": version("mlflow"),
        "git_commit": sha.strip(),
    }


RATIO_KEYS = ("running_s", "first_task_s", "promoted_s")
LOG_MARKERS = ("WARNING", "ERROR", "CRITICAL", "Traceback", "Crash")


def ratios(summaries: dict[str, dict[str, Any]], num: str, den: str) -> dict[str, float] | None:
    """`num`'s median over `den`'s, per milestone of RATIO_KEYS (None unless both variants ran)."""
    if num not in summaries or den not in summaries:
        return None
    out = {}
    for k in RATIO_KEYS:
        a, b = summaries[num].get(k), summaries[den].get(k)
        if a and b and b["median"]:
            out[k] = round(a["median"] / b["median"], 3)
    return out


def log_findings(path: Path, limit: int = 30) -> dict[str, Any]:
    """The worker log's warning/error lines (the first `limit`), and how many there were."""
    if not path.exists():
        return {"lines": 0, "flagged": 0, "first": []}
    lines = path.read_text(errors="replace").splitlines()
    flagged = [ln[:300] for ln in lines if any(m in ln for m in LOG_MARKERS)]
    return {"lines": len(lines), "flagged": len(flagged), "first": flagged[:limit]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=4, help="events to time per variant")
    ap.add_argument(
        "--worker-types",
        default="process,evergreen-process",
        help="comma-separated worker types, one variant (pool + worker) each",
    )
    ap.add_argument("--query-seconds", type=float, default=1.0, help="PREFECT_WORKER_QUERY_SECONDS")
    ap.add_argument("--prefetch-seconds", type=float, default=5.0, help="PREFECT_WORKER_PREFETCH_SECONDS")
    ap.add_argument("--within", type=float, default=2.0, help="the retrain automations' `within` (s)")
    ap.add_argument(
        "--before-root", type=Path, default=None, help="another checkout, run as `before` on a process worker"
    )
    ap.add_argument("--import-reps", type=int, default=2, help="0: skip the import table")
    ap.add_argument("--logs", type=Path, default=None, help="copy the servers' and workers' logs here")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers and drop the databases
    # (label, code checkout, model name, worker type)
    types = [t.strip() for t in args.worker_types.split(",") if t.strip()]
    if not types or len(set(types)) != len(types):
        ap.error("--worker-types: one or more distinct worker types")
    variants = [(t, ROOT, f"{MODEL}-{t}", t) for t in types]
    if args.before_root is not None:
        variants.insert(0, ("before", args.before_root.resolve(), f"{MODEL}-before", "process"))
    load_start = os.getloadavg()
    roots = sorted({root for _, root, _, _ in variants})
    imports = {
        str(root): measure_imports(root, args.import_reps, short=True)
        for root in roots
        if args.import_reps > 0
    }
    print(json.dumps({k: v["engine_plus_retrain"] for k, v in imports.items()}), flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="evergreen-event-bench-"))
    workers: list[Any] = []
    reps: dict[str, list[dict[str, Any]]] = {label: [] for label, *_ in variants}
    deployed: dict[str, Any] = {}
    worker_logs: dict[str, Any] = {}
    load_rounds: list[list[float]] = []
    t_all = time.perf_counter()
    try:
        with databases(os.getpid()) as (prefect_db, mlflow_db), servers(tmp, prefect_db, mlflow_db) as env:
            import stack

            specs = {model: bench_spec(tmp / "models", model) for _, _, model, _ in variants}
            api = env["PREFECT_API_URL"]
            stack.limits.ensure_limits(api, stack.limits.desired_limits(tmp / "models"))
            history, weeks = elec2_weeks(args.reps)
            seeded = seed_champions(tmp, list(specs), history)
            print(f"seeded: {seeded}", flush=True)
            for label, root, model, wtype in variants:
                pool = f"{POOL}-{label}"
                deployed[label] = deploy(tmp, specs[model], pool, wtype, env, root, args.within)
                print(f"deployed {label}: {deployed[label]}", flush=True)
                wenv = {**os.environ, **env, "PREFECT_WORKER_PREFETCH_SECONDS": str(args.prefetch_seconds)}
                t_worker = time.perf_counter()
                workers.append(
                    stack.start_prefect_worker(
                        api,
                        pool,
                        log_path=tmp / f"worker-{label}.log",
                        cwd=root,
                        env=wenv,
                        query_seconds=args.query_seconds,
                        create_pool=False,
                        timeout=300,
                        worker_type=wtype,
                    )  # fmt: skip
                )
                deployed[label]["worker_online_s"] = round(time.perf_counter() - t_worker, 1)
            for i in range(args.reps):
                # a new labelled week: the gate judges the retrain on rows neither model has seen
                print(f"round {i}: {ingest(tmp, variants[0][2], weeks[i], f'week-{i}')}", flush=True)
                load_rounds.append([round(x, 2) for x in os.getloadavg()])
                order = variants if i % 2 == 0 else variants[::-1]  # neither type always goes first
                for label, _, model, _ in order:
                    time.sleep(args.within + 1.0)  # the automation's bucket from the last event has closed
                    try:
                        rep = one_event(api, model, i)
                    except Exception as exc:  # noqa: BLE001 - record it, keep timing the other variants
                        rep = {"repetition": i, "error": repr(exc)}
                    reps[label].append(rep)
                    print(json.dumps({"variant": label, **rep}), flush=True)
            while workers:
                workers.pop().stop()
    finally:
        for w in workers:
            w.stop()
        for label, *_ in variants:
            worker_logs[label] = log_findings(tmp / f"worker-{label}.log")
        if args.logs is not None:
            args.logs.mkdir(parents=True, exist_ok=True)
            for log in tmp.glob("*.log"):
                shutil.copy2(log, args.logs / log.name)
        shutil.rmtree(tmp, ignore_errors=True)
    summaries = {label: summarise(reps[label]) for label, *_ in variants}
    doc: dict[str, Any] = {
        "command": " ".join([".venv/bin/python benchmarks/event_latency.py", *sys.argv[1:]]),
        "goals": GOALS,
        "settings": {
            "PREFECT_WORKER_QUERY_SECONDS": args.query_seconds,
            "PREFECT_WORKER_PREFETCH_SECONDS": args.prefetch_seconds,
            "automation_within_s": args.within,
            "backend": "PostgreSQL (Prefect and MLflow), one pool and one worker per variant",
            "spec": "models/elec2.yaml as elec2-<variant>, with triggers.cooldown 1s",
            "order": "variants interleaved in each round, order reversed every other round",
        },
        "seed": seeded,
        "variants": {
            label: {
                "code_root": str(root),
                "model": model,
                "worker_type": wtype,
                "deploy": deployed.get(label),
                "summary": summaries[label],
                "repetitions": reps[label],
                "worker_log": worker_logs.get(label),
            }
            for label, root, model, wtype in variants
        },
        "ratio_evergreen_process_over_process": ratios(summaries, "evergreen-process", "process"),
        "imports": imports,
        "machine": machine(),
        "load_average": {"start": list(load_start), "rounds": load_rounds, "end": list(os.getloadavg())},
        "wall_s": round(time.perf_counter() - t_all, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(
        json.dumps(
            {
                **{label: v["summary"] for label, v in doc["variants"].items()},
                "ratio_evergreen_process_over_process": doc["ratio_evergreen_process_over_process"],
                "load_average": doc["load_average"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
