"""Where `evergreen demo`'s time goes: wall time, time to the first live row, and every flow run's phases.

    .venv/bin/python benchmarks/demo_timing.py                  # the default demo (what `make demo` runs)
    .venv/bin/python benchmarks/demo_timing.py -- --full        # arguments after -- go to `evergreen demo`
    .venv/bin/python benchmarks/demo_timing.py --api http://127.0.0.1:4200/api   # a running (--keep) stack
    .venv/bin/python benchmarks/demo_timing.py --worker-type process --out /tmp/t.json  # Prefect's own worker

Runs `evergreen demo --json` as a subprocess with its own EVERGREEN_HOME (a temp dir) and free ports,
exactly like `make demo`, and writes benchmarks/results/demo_timing.json: the demo's own `seconds`
(stack_up, first_row, first_week_row, total), the seconds of each warm-up and replay week, the flow-run
phase summary per kind (queued = created -> Pending: worker polling; startup = Pending -> Running:
the flow-run process starting and importing its code; run = the flow's own work; demo/timing.py),
the wall time of the whole command, load averages before and after, the worker type (`--worker-type`
sets EVERGREEN_WORKER_TYPE; unset, the stack's default `evergreen-process`) and machine facts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stack.prefect_worker import WORKER_TYPE, WORKER_TYPES  # noqa: E402 - light: no Prefect import


def _free_port() -> int:
    import stack

    return int(stack.free_port())


def fresh_stack_env(tmp: str) -> dict[str, str]:
    """This environment without EVERGREEN_/PREFECT_/MLFLOW_ settings: a new home under `tmp`, free ports.

    What `evergreen up`/`evergreen demo` see on a fresh machine (also used by benchmarks/stack_up.py).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVERGREEN_", "PREFECT_", "MLFLOW_"))}
    env.update(
        EVERGREEN_HOME=str(Path(tmp) / "home"),
        EVERGREEN_PREFECT_PORT=str(_free_port()),
        EVERGREEN_MLFLOW_PORT=str(_free_port()),
        PYTHONUNBUFFERED="1",
    )
    return env


def machine() -> dict[str, Any]:
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": sha.strip(),
    }


def run(demo_args: list[str], worker_type: str | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="evergreen-demo-timing-") as tmp:
        env = fresh_stack_env(tmp)
        if worker_type:
            env["EVERGREEN_WORKER_TYPE"] = worker_type
        cmd = [sys.executable, "-m", "cli.main", "demo", *demo_args, "--json"]
        load_before = os.getloadavg()
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = round(time.monotonic() - t0, 1)
        load_after = os.getloadavg()
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"error: evergreen demo failed ({proc.returncode})")
    result = json.loads(proc.stdout)
    weeks = [*result["weeks"], *((result.get("side") or {}).get("weeks") or [])]
    return {
        "command": " ".join(["evergreen", "demo", *demo_args]),
        "worker_type": worker_type or WORKER_TYPE,
        "wall_s": wall,
        "seconds": result["seconds"],
        "warmup_s": {
            result["options"]["model"]: result["warmup"].get("seconds"),
            **(
                {result["side"]["model"]: result["side"]["warmup"].get("seconds")}
                if result.get("side")
                else {}
            ),
        },
        "weeks": [
            {k: w.get(k) for k in ("model", "index", "week", "seconds", "ingest_seconds")}
            | {"retrains": len(w.get("retrains") or [])}
            for w in weeks
        ],
        "timing": (result.get("timing") or {}).get("summary"),
        "runs": (result.get("timing") or {}).get("runs"),
        "versions": len(result["versions"]) + len((result.get("side") or {}).get("versions") or []),
        "shadow_decisions": len(result.get("shadow_decisions") or []),
        "notifications": len(result.get("notifications") or []),
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in load_after],
        "machine": machine(),
    }


def from_api(api_url: str, hours: float) -> dict[str, Any]:
    """The flow-run phases of a running stack (a `--keep` demo, or one stopped by hand mid-replay)."""
    from datetime import UTC, datetime, timedelta

    from demo import timing
    from demo.prefect_rest import PrefectApi

    api = PrefectApi(api_url)
    names = {str(f["id"]): str(f["name"]) for f in api._post("/flows/filter", {"limit": 200}) or []}
    deps = api._post("/deployments/filter", {"limit": 200}) or []
    kinds = {str(d["id"]): names.get(str(d.get("flow_id")), "other") for d in deps}
    runs = timing.collect(api, kinds, datetime.now(UTC) - timedelta(hours=hours))
    return {
        "api": api_url,
        "timing": timing.summarize(runs),
        "runs": runs,
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "machine": machine(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "demo_timing.json"))
    ap.add_argument("--api", help="read the flow runs of this running stack's API instead of running a demo")
    ap.add_argument("--hours", type=float, default=2.0, help="with --api: runs created in the last N hours")
    ap.add_argument(
        "--worker-type",
        choices=WORKER_TYPES,
        help="EVERGREEN_WORKER_TYPE for the demo's stack (default: unset, the stack's default)",
    )
    ap.add_argument("demo_args", nargs="*", help="arguments for `evergreen demo` (after --)")
    args = ap.parse_args()
    if args.api:
        got = from_api(args.api, args.hours)
        from demo.timing import summary_lines

        for line in summary_lines(got["timing"]):
            print(line)
        if args.out != ap.get_default("out"):
            Path(args.out).write_text(json.dumps(got, indent=2) + "\n")
        return
    out = run(args.demo_args, args.worker_type)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    s = out["seconds"]
    print(
        f"{out['command']} ({out['worker_type']} worker): wall {out['wall_s']}s, stack up {s.get('stack_up')}s, first live row "
        f"{s.get('first_row')}s, first week row {s.get('first_week_row')}s; load {out['load_avg_before']} -> "
        f"{out['load_avg_after']}"
    )
    for kind, e in (out["timing"] or {}).items():
        print(
            f"  {kind}: {e['runs']} runs, median queued {e['queued_median']}s, start-up {e['startup_median']}s, "
            f"run {e['run_median']}s"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
