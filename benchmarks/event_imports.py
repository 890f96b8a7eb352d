"""Cold-start import costs of the flow modules and the `evergreen` CLI, each in a fresh interpreter.

What a process worker pays before a flow run can turn `Running`: start Python, `import prefect.engine`,
then import the deployment's entrypoint module (flows/retrain.py for a retrain). Each row is the median
wall time of `python -c "import <module>"` over `reps` fresh processes (interpreter start included;
`python -c pass` is the floor), and which heavy libraries the import pulled in.

    .venv/bin/python benchmarks/event_imports.py            # prints the table as JSON
    .venv/bin/python benchmarks/event_imports.py --root DIR  # the same against another checkout of the code
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HEAVY = [
    "great_expectations",
    "lightgbm",
    "mlflow",
    "dvc",
    "sklearn",
    "scipy",
    "pandas",
    "pyarrow",
    "plotly",
    "matplotlib",
    "dask",
    "distributed",
    "river",
    "prefect",
]
FLOWS = [
    "flows.retrain",
    "flows.monitor",
    "flows.ingest",
    "flows.labels",
    "flows.active",
    "flows.backtest",
    "flows.rollback",
    "flows.drift_partitioned",
]
LIBRARIES = ["prefect", "prefect.engine", "great_expectations", "lightgbm", "mlflow", "sklearn", "pandas"]
# the CLI: `--help`, and bad input that must fail fast (an unknown model, an unknown command)
CLI = {
    "evergreen --help": ["--help"],
    "evergreen retrain --help": ["retrain", "--help"],
    "evergreen retrain no-such-model": ["retrain", "no-such-model"],
    "evergreen no-such-command": ["no-such-command"],
}
PROBE = (
    "import json, sys, time; t = time.perf_counter(); import {module}; "
    "print(json.dumps([time.perf_counter() - t, sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))]))"
)


def _python() -> str:
    return str(Path(sys.executable))


def time_import(module: str, root: Path, reps: int) -> dict[str, Any]:
    """Median wall time of a fresh `python -c "import module"` (process included) and of the import alone."""
    walls, inner, loaded = [], [], []
    for _ in range(reps):
        t = time.perf_counter()
        res = subprocess.run(
            [_python(), "-c", PROBE.format(module=module, heavy=HEAVY)],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        walls.append(time.perf_counter() - t)
        if res.returncode != 0:
            return {"error": res.stderr.strip().splitlines()[-1:]}
        seconds, loaded = json.loads(res.stdout.strip().splitlines()[-1])
        inner.append(seconds)
    return {
        "process_s": round(statistics.median(walls), 3),
        "import_s": round(statistics.median(inner), 3),
        "heavy_loaded": loaded,
    }


def time_cli(args: list[str], root: Path, reps: int) -> dict[str, Any]:
    walls, code, last = [], 0, ""
    for _ in range(reps):
        t = time.perf_counter()
        res = subprocess.run(
            # the console script's code, run so that `root`'s modules are the ones imported
            [
                _python(),
                "-c",
                f"import sys; sys.argv = {['evergreen', *args]!r}; from cli.main import main; main()",
            ],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        walls.append(time.perf_counter() - t)
        code, last = res.returncode, (res.stderr.strip() or res.stdout.strip()).splitlines()[-1:]
    return {"process_s": round(statistics.median(walls), 3), "exit_code": code, "last_line": last}


# the short table benchmarks/event_latency.py measures per variant (the full one takes long on 2 cores)
SHORT = {
    "libraries": ["prefect.engine"],
    "flows": ["flows.retrain", "flows.monitor", "flows.ingest"],
    "cli": ["evergreen --help", "evergreen retrain no-such-model"],
}


def measure_imports(root: Path = ROOT, reps: int = 3, short: bool = False) -> dict[str, Any]:
    """The table: interpreter floor, libraries, flow modules, the engine + retrain pair, the CLI."""
    libs, flows = (SHORT["libraries"], SHORT["flows"]) if short else (LIBRARIES, FLOWS)
    cli = {k: v for k, v in CLI.items() if not short or k in SHORT["cli"]}
    floor = time_import("sys", root, reps)
    out: dict[str, Any] = {
        "command": ".venv/bin/python benchmarks/event_imports.py",
        "reps": reps,
        "python_floor_s": floor["process_s"],
        "libraries": {m: time_import(m, root, reps) for m in libs},
        "flows": {m: time_import(m, root, reps) for m in flows},
        # what `python -m prefect.engine` imports before it can load a retrain and report Running
        "engine_plus_retrain": time_import("prefect.engine, flows.retrain", root, reps),
        "cli": {name: time_cli(args, root, reps) for name, args in cli.items()},
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=ROOT, help="checkout whose modules are imported")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--short", action="store_true", help="the few rows benchmarks/event_latency.py records")
    args = ap.parse_args()
    print(json.dumps(measure_imports(args.root.resolve(), args.reps, args.short), indent=2))


if __name__ == "__main__":
    main()
