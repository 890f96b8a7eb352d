"""Policy backtest speed: 131 weekly Elec2 batches (4 warm-up) x 6 policies of policies/elec2.yaml.

The six (`--only`): never, weekly, every-4, performance, drift-psi, hybrid.

Three runs of the same work, side by side:

* ``flow``: the Prefect flow as `evergreen backtest` runs it (one task per policy on a
  ThreadPoolTaskRunner, artifacts, CSV/JSON/HTML/PNG). The Prefect API server is started by a tiny
  flow first, and that start-up is reported on its own (`server_start_seconds`).
* ``core-threads``: `evergreen.backtest.run_backtest(workers=2)`, no Prefect.
* ``core-sequential``: the same with one thread; its per-kind compute seconds are the clean breakdown
  of where the time goes (in threads the kinds overlap and contend for the GIL).

The machine is shared, so the load average at the start of each run is recorded beside its time.
Results: benchmarks/results/backtest.json (timings, breakdown) and backtest.csv (the flow's table).

    .venv/bin/python benchmarks/backtest.py [--policies policies/elec2.yaml] [--skip-core]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SIX = ["never", "weekly", "every-4", "performance", "drift-psi", "hybrid"]


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _timed(fn: Any) -> tuple[Any, dict[str, float]]:
    load = _load()
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, {
        "wall_seconds": round(time.perf_counter() - wall, 2),
        "cpu_seconds": round(time.process_time() - cpu, 2),
        "load_at_start": load,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policies", default=str(ROOT / "policies" / "elec2.yaml"))
    ap.add_argument(
        "--only", default=",".join(SIX), help="comma-separated policy names from the file ('' = all of them)"
    )
    ap.add_argument("--skip-core", action="store_true", help="only the flow run")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()

    os.chdir(ROOT)  # the flow reads models/ and seeds/ relative to the checkout
    import lightgbm
    import pandas as pd
    import sklearn

    from evergreen import backtest as bt
    from evergreen.datasets import prepare_elec2
    from evergreen.spec import load_spec

    spec = load_spec("elec2", ROOT / "models")
    frame = prepare_elec2(ROOT / "seeds" / "elec2" / "electricity.csv")
    pset = bt.load_policies(Path(args.policies))
    if args.only:
        wanted = args.only.split(",")
        missing = sorted(set(wanted) - {p.name for p in pset.policies})
        if missing:
            raise SystemExit(f"policies not in {args.policies}: {missing}")
        pset = pset.model_copy(update={"policies": [p for p in pset.policies if p.name in wanted]})
    results: dict[str, Any] = {
        "what": f"{len(pset.policies)} policies x weekly Elec2 batches, 4 warm-up, LightGBM n_jobs=1 per fit",
        "policies": [p.name for p in pset.policies],
        "estimator": spec.training.estimator.model_dump(),
        "gate_n_bootstrap": spec.gate.n_bootstrap,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "lightgbm": lightgbm.__version__,
            "sklearn": sklearn.__version__,
            "pandas": pd.__version__,
            "platform": platform.platform(),
        },
        "runs": {},
    }

    # ---- the flow, as the CLI runs it ----
    with tempfile.TemporaryDirectory() as home:
        os.environ["EVERGREEN_HOME"] = home
        from prefect import flow

        from flows.backtest import backtest

        @flow
        def hello() -> int:
            return 1

        _, start = _timed(hello)
        results["server_start_seconds"] = start["wall_seconds"]
        inline = [p.model_dump(mode="json", exclude_unset=True) for p in pset.policies]
        report, t = _timed(lambda: backtest(model="elec2", policies=inline))
        results["runs"]["flow"] = {
            **t,
            "compute_seconds": report["compute_seconds"],
            "compute_calls": report["compute_calls"],
            "scored_batches": report["scored_batches"],
        }
        table = report["table"]
    print(f"flow: {results['runs']['flow']}", flush=True)

    if not args.skip_core:
        for name, workers in (("core-threads", 2), ("core-sequential", 1)):
            rep, t = _timed(
                lambda w=workers: bt.run_backtest(frame, spec, pset.policies, warmup=4, workers=w)
            )
            results["runs"][name] = {
                **t,
                "compute_seconds": rep.compute_seconds,
                "compute_calls": rep.compute_calls,
                "policy_seconds": {p.name: round(p.seconds, 2) for p in rep.policies},
            }
            print(f"{name}: {results['runs'][name]}", flush=True)
            same = [r["mean_accuracy"] for r in bt.summary_rows(rep)] == [r["mean_accuracy"] for r in table]
            results["runs"][name]["same_results_as_flow"] = same

    results["table"] = table
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "backtest.json").write_text(json.dumps(results, indent=2) + "\n")
    pd.DataFrame(table).to_csv(out / "backtest.csv", index=False)
    print(f"wrote {out / 'backtest.json'} and {out / 'backtest.csv'}")


if __name__ == "__main__":
    main()
