"""How long `evergreen up` takes from a fresh EVERGREEN_HOME, and where the time goes.

    .venv/bin/python benchmarks/stack_up.py                       # 3 runs of this checkout
    .venv/bin/python benchmarks/stack_up.py --runs 3 --before /tmp/evergreen-before
    .venv/bin/python benchmarks/stack_up.py -- --no-deploy        # arguments after -- go to `evergreen up`

Each run is `python -m cli.main up --json` in a temp EVERGREEN_HOME on free ports (what `evergreen demo`
and `make demo` do first), then `evergreen down`. With `--before DIR` (another checkout, e.g.
`git archive <commit> | tar -x -C DIR`) the runs take turns: before, after, before, after, ... with the
same command and this venv, so both see the same machine load. Every progress line `up` prints is
kept with its time since the start. Writes benchmarks/results/stack_up.json (load averages included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.demo_timing import fresh_stack_env  # noqa: E402


def _commit(root: Path) -> str:
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else "(not a git checkout)"


def one_run(root: Path, up_args: list[str]) -> dict[str, Any]:
    """`evergreen up` in a fresh home from `root`; its wall time, its own up_seconds, timed progress."""
    with tempfile.TemporaryDirectory(prefix="evergreen-stack-up-") as tmp:
        env = fresh_stack_env(tmp)
        cmd = [sys.executable, "-m", "cli.main", "up", *up_args, "--json"]
        load_before = os.getloadavg()
        t0 = time.monotonic()
        proc = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        progress = []
        assert proc.stderr is not None and proc.stdout is not None
        for line in proc.stderr:
            progress.append(f"{time.monotonic() - t0:6.1f}s {line.rstrip()}")
        out = proc.stdout.read()
        rc = proc.wait()
        wall = round(time.monotonic() - t0, 1)
        load_after = os.getloadavg()
        subprocess.run(
            [sys.executable, "-m", "cli.main", "down"], cwd=root, env=env, capture_output=True, check=False
        )
    if rc != 0:
        sys.stderr.write("\n".join(progress[-30:]) + "\n")
        raise SystemExit(f"error: evergreen up failed ({rc}) in {root}")
    st = json.loads(out)
    return {
        "wall_s": wall,
        "up_seconds": st.get("up_seconds"),
        "deploy_s": (st.get("deploy") or {}).get("seconds"),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "progress": progress,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs per checkout")
    ap.add_argument("--before", type=Path, default=None, help="another checkout to take turns with")
    ap.add_argument("--after", type=Path, default=ROOT, help="the checkout to time (default: this one)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "stack_up.json")
    ap.add_argument("up_args", nargs="*", help="after --: arguments for `evergreen up`")
    args = ap.parse_args()
    after = args.after.resolve()
    roots = {"after": after} if args.before is None else {"before": args.before.resolve(), "after": after}
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in roots}
    for i in range(args.runs):
        for label, root in roots.items():
            r = one_run(root, args.up_args)
            runs[label].append(r)
            print(f"run {i + 1} {label}: {r['wall_s']} s (load {r['load_before'][0]})", file=sys.stderr)
    summary = {
        label: {
            "commit": _commit(root),
            "root": str(root),
            "wall_s": [r["wall_s"] for r in runs[label]],
            "median_wall_s": statistics.median(r["wall_s"] for r in runs[label]),
        }
        for label, root in roots.items()
    }
    doc = {
        "command": " ".join(["evergreen", "up", *args.up_args, "--json"])
        + " (fresh EVERGREEN_HOME, free ports)",
        "summary": summary,
        "runs": runs,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
