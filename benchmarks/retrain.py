"""Where one retrain spends its time, step by step, beside a bare LightGBM fit of the same rows.

Starts a real Prefect server and MLflow server on free ports, then, in this process:

1. ingests all rows but the last 7 days through the ingest flow (GX + DVC), and retrains: the first
   champion (the spec as shipped);
2. ingests the last 7 days (the hold-out neither model has seen);
3. retrains with `training.refit` off: one fit, gated against the champion (the "single fit" run);
4. retrains with the spec as shipped: the challenger fit, the gate, then the refit that includes the
   hold-out (two fits);

and after each retrain fits `lightgbm.LGBMClassifier(**the spec's params)` on the very rows and weights
the flow fit on (taken from the flow's own `split` / `refit_rows` calls): the bare fit(s). The ratio is
flow wall time / bare fit wall time for the same fits (CPU ratio beside it).

Per-step seconds come from wrapping the functions the flow calls (benchmarks/retrain_steps.py, self
time, no double counting); `prefect_and_glue` is the rest of the flow's wall time. The Prefect API's
task runs of each flow run are recorded beside them.

    .venv/bin/python benchmarks/retrain.py                  # Elec2 as it is (45,312 rows): retrain.json
    .venv/bin/python benchmarks/retrain.py --rows 1000000   # 1M rows (retrain_steps.scale_elec2): retrain_1m.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.retrain_steps import StepClock, bare_fit, scale_elec2, task_runs  # noqa: E402

GOAL = 1.10
PACKAGES = [
    "prefect",
    "mlflow",
    "great_expectations",
    "dvc",
    "lightgbm",
    "pandas",
    "numpy",
    "pyarrow",
    "scikit-learn",
]


@contextmanager
def servers(tmp: Path) -> Iterator[None]:
    """A Prefect server and an MLflow server (sqlite) on free ports; the env points this process at them."""
    import stack

    pport, mport = stack.free_port(), stack.free_port()
    prefect = stack.start_prefect_server(pport, tmp / "prefect", log_path=tmp / "prefect.log")
    mlflow_srv = stack.start_mlflow_server(
        mport,
        backend_store_uri=f"sqlite:///{tmp / 'mlflow.db'}",
        artifacts_destination=tmp / "artifacts",
        log_path=tmp / "mlflow.log",
    )
    try:
        os.environ.update(
            {
                "PREFECT_API_URL": f"http://127.0.0.1:{pport}/api",
                "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mport}",
                "EVERGREEN_HOME": str(tmp / "home"),
                "PREFECT_LOGGING_LEVEL": "WARNING",
            }
        )
        yield
    finally:
        prefect.stop()
        mlflow_srv.stop()


def machine_facts() -> dict[str, Any]:
    from benchmarks.drift_dask import machine_facts as base

    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    return {**base(), **{p: version(p) for p in PACKAGES}, "git_commit": sha.strip()}


def ingest_part(frame: Any, tmp: Path, name: str) -> dict[str, Any]:
    from flows.ingest import ingest

    path = tmp / f"{name}.parquet"
    frame.to_parquet(path, index=False)
    t = time.perf_counter()
    out = ingest(model="elec2", path=str(path))
    return {"rows": len(frame), "status": out["status"], "wall_s": round(time.perf_counter() - t, 3)}


def run_retrain(clock: StepClock, label: str, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """One in-process retrain flow run with the step clock on, then the bare fit(s) of the same rows."""
    from evergreen.spec import load_spec
    from flows.retrain import retrain

    spec = load_spec("elec2", ROOT / "models")
    spec = spec.with_overrides(overrides) if overrides else spec
    clock.reset()
    wall, cpu = time.perf_counter(), time.process_time()
    state = retrain(model="elec2", reason="manual", force=True, overrides=overrides, return_state=True)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    out = state.result()
    steps = {k: round(v, 3) for k, v in sorted(clock.seconds.items(), key=lambda kv: -kv[1])}
    steps["prefect_and_glue"] = round(wall - sum(clock.seconds.values()), 3)
    steps_cpu = {k: round(clock.cpu[k], 3) for k in clock.seconds}
    steps_cpu["prefect_and_glue"] = round(cpu - sum(clock.cpu.values()), 3)
    split = clock.kept["split"]
    fits = [("challenger", split.train, split.weights)]
    if "refit_rows" in clock.kept:  # the gate passed and the spec refits: the flow fit twice
        fits.append(("refit", *clock.kept["refit_rows"]))
    bare = {name: bare_fit(spec, rows, w) | {"rows": len(rows)} for name, rows, w in fits}
    bare_wall = sum(b["wall_s"] for b in bare.values())
    bare_cpu = sum(b["cpu_s"] for b in bare.values())
    return {
        "run": label,
        "overrides": overrides or {},
        "status": out["status"],
        "gate_outcome": out["gate_outcome"],
        "train_rows": len(split.train),
        "holdout_rows": len(split.holdout),
        "fits": len(fits),
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "steps_s": steps,
        "steps_cpu_s": steps_cpu,
        "prefect_api": task_runs(str(state.state_details.flow_run_id)),
        "bare_fits": {
            k: {m: round(v, 3) if isinstance(v, float) else v for m, v in b.items()} for k, b in bare.items()
        },
        "bare_fit_wall_s": round(bare_wall, 3),
        "ratio_wall": round(wall / bare_wall, 3),
        "ratio_cpu": round(cpu / bare_cpu, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=0, help="scale Elec2 to this many rows (0: Elec2 as it is)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the jitter (--rows)")
    ap.add_argument("--jitter", type=float, default=0.005, help="std of the numeric jitter (--rows)")
    ap.add_argument("--out", type=Path, default=None, help="result JSON (default benchmarks/results/...)")
    ap.add_argument("--before", type=Path, default=None, help="an earlier result to report beside this one")
    args = ap.parse_args()
    name = (
        "retrain"
        if not args.rows
        else f"retrain_{args.rows // 1_000_000}m"
        if args.rows % 1_000_000 == 0
        else f"retrain_{args.rows}"
    )
    out_path = args.out or ROOT / "benchmarks" / "results" / f"{name}.json"
    load_start = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="evergreen-bench-"))
    with servers(tmp):
        os.chdir(ROOT)
        import pandas as pd

        from evergreen.datasets import prepare_elec2

        frame = prepare_elec2(ROOT / "seeds" / "elec2" / "electricity.csv")
        if args.rows:
            t = time.perf_counter()
            frame = scale_elec2(frame, args.rows, args.seed, args.jitter)
            print(f"built {len(frame)} rows in {time.perf_counter() - t:.1f}s", flush=True)
        cut = frame["timestamp"].iloc[-1] - pd.Timedelta("7D")
        old, new = frame[frame["timestamp"] <= cut], frame[frame["timestamp"] > cut]
        clock = StepClock()
        with clock.installed():
            ingests = [ingest_part(old, tmp, "history")]
            runs = [run_retrain(clock, "first champion (spec as shipped)", None)]
            ingests.append(ingest_part(new, tmp, "last-week"))
            runs.append(run_retrain(clock, "single fit (training.refit off)", {"training.refit": False}))
            runs.append(run_retrain(clock, "spec as shipped (fit + refit)", None))
            for r in runs:
                print(
                    json.dumps(
                        {
                            k: r[k]
                            for k in ("run", "status", "wall_s", "bare_fit_wall_s", "ratio_wall", "steps_s")
                        }
                    ),
                    flush=True,
                )
    result: dict[str, Any] = {
        "command": f".venv/bin/python benchmarks/retrain.py{f' --rows {args.rows}' if args.rows else ''}",
        "rows": len(frame),
        "data": "Elec2 as it is"
        if not args.rows
        else scale_elec2.__doc__.split("\n\n")[0].strip() + f" (seed {args.seed}, jitter {args.jitter})",
        "machine": machine_facts(),
        "load_average": {"start": list(load_start), "end": list(os.getloadavg())},
        "goal_ratio": GOAL,
        "ratio_single_fit": runs[1]["ratio_wall"],
        "ratio_spec_as_shipped": runs[2]["ratio_wall"],
        "ingest": ingests,
        "retrain_runs": runs,
    }
    if args.before is not None:
        before = json.loads(args.before.read_text())
        result["before"] = {
            k: before.get(k) for k in ("ratio_single_fit", "ratio_spec_as_shipped", "load_average")
        } | {
            "file": str(args.before.relative_to(ROOT)) if args.before.is_absolute() else str(args.before),
            "git_commit": before.get("machine", {}).get("git_commit"),
            "steps_s": [r["steps_s"] for r in before["retrain_runs"]],
        }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"wrote {out_path}: ratio {result['ratio_single_fit']} (single fit), {result['ratio_spec_as_shipped']} (shipped spec)"
    )


if __name__ == "__main__":
    main()
