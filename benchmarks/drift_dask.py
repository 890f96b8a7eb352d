"""Drift on 10M rows x 20 features: single process vs Dask (LocalCluster), with scipy as the peer.

Side by side in one run, on the same data:

* single: `measure_drift` on the whole batch as one pandas frame in this process;
* dask: `adapters.dask_engine.measure_drift_dask` on a LocalCluster (2 worker processes, 1 thread
  each) over the same rows as a dask.dataframe persisted on the workers (partitions are generated
  on the workers from per-partition seeds, so no data is shipped from the client);
* the two reports are compared field by field (they must be equal, batch_mean to rounding);
* scipy: `scipy.stats.ks_2samp` per feature on a subsample (raw reference vs the first
  `--subsample` batch rows), timed against `measure_drift` on the same subsample: the peer ratio;
* evidently: run as in benchmarks/drift.py when `--evidently-python` exists, else recorded as skipped;
* `--lazy-rows N` (optional): Dask drift over N lazily generated rows (never all in memory at
  once: out-of-core in the sense that each worker generates, bins and drops one partition at a time).

    .venv/bin/python benchmarks/drift_dask.py [--rows 10000000] [--lazy-rows 0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import scipy
from scipy.stats import ks_2samp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.dask_engine import dask_client, measure_drift_dask  # noqa: E402
from benchmarks.drift import SHIFT, SHIFTED, run_evidently  # noqa: E402
from evergreen.drift import build_profile, measure_drift  # noqa: E402
from evergreen.spec import DriftTrigger  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def make_partition(i: int, rows: int, features: int, seed: int) -> pd.DataFrame:
    """Partition i of the batch: standard normal, the first SHIFTED features shifted by SHIFT std."""
    rng = np.random.default_rng([seed, i])
    x = rng.standard_normal((rows, features))
    x[:, :SHIFTED] += SHIFT
    return pd.DataFrame(x, columns=[f"f{j}" for j in range(features)])


def machine_facts() -> dict[str, Any]:
    vm = psutil.virtual_memory()
    return {
        "cpus": os.cpu_count(),
        "memory_total_gib": round(vm.total / 2**30, 1),
        "memory_available_gib": round(vm.available / 2**30, 1),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "platform": platform.platform(),
    }


def best(times: list[float]) -> float:
    return min(times)


def diff_reports(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Fields that differ between two report dumps (batch_mean compared to 1e-12 relative)."""
    unequal, mean_rel = [], 0.0
    for name, fa in a["features"].items():
        fb = b["features"][name]
        for k, v in fa.items():
            if k == "batch_mean" and v is not None:
                mean_rel = max(mean_rel, abs(fb[k] - v) / max(abs(v), 1e-300))
            elif fb[k] != v:
                unequal.append(f"{name}.{k}")
    for k in ("dataset_drift", "drift_share", "drift_score", "drifted_features", "n_rows"):
        if a[k] != b[k]:
            unequal.append(k)
    return {"unequal_fields": unequal, "batch_mean_max_rel_diff": mean_rel, "equal": not unequal}


def main() -> None:  # noqa: C901 - a linear script
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000, help="batch rows")
    ap.add_argument("--ref-rows", type=int, default=1_000_000, help="reference (training) rows")
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--partition-rows", type=int, default=250_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--subsample", type=int, default=1_000_000, help="batch rows given to scipy")
    ap.add_argument("--lazy-rows", type=int, default=0, help="also: Dask drift over N lazily generated rows")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--evidently-python", default="/tmp/evidently-venv/bin/python")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "drift_dask.json")
    args = ap.parse_args()

    import dask.dataframe as dd
    from distributed import wait

    feats, prow = args.features, args.partition_rows
    nparts = -(-args.rows // prow)
    sizes = [min(prow, args.rows - i * prow) for i in range(nparts)]
    cols = [f"f{j}" for j in range(feats)]
    ref = pd.DataFrame(
        np.random.default_rng([args.seed, 10**6]).standard_normal((args.ref_rows, feats)), columns=cols
    )
    cfg = DriftTrigger()
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    profile = build_profile(ref, cols, [], bins=cfg.bins)
    profile_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    batch = pd.concat(
        [make_partition(i, n, feats, args.seed) for i, n in enumerate(sizes)], ignore_index=True
    )
    gen_seconds = time.perf_counter() - t0

    results: dict[str, Any] = {
        "data": {
            "batch_rows": args.rows,
            "reference_rows": args.ref_rows,
            "features": feats,
            "dtype": "float64",
            "batch_gib": round(batch.memory_usage(deep=False).sum() / 2**30, 2),
            "partitions": nparts,
            "partition_rows": prow,
            "shifted_features": cols[:SHIFTED],
            "shift_std": SHIFT,
            "seed": args.seed,
        },
        "machine": machine_facts(),
    }
    with dask_client(n_workers=args.workers, threads_per_worker=1, processes=True) as client:
        ddf = dd.from_map(make_partition, range(nparts), sizes, [feats] * nparts, [args.seed] * nparts)
        ddf = ddf.persist()
        wait(ddf)
        single_t: list[float] = []
        dask_t: list[float] = []
        for _ in range(args.repeats):  # interleaved: both see the same background load
            t0 = time.perf_counter()
            single = measure_drift(profile, batch, cfg)
            single_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            parted = measure_drift_dask(profile, ddf, cfg)
            dask_t.append(time.perf_counter() - t0)
        equality = diff_reports(single.model_dump(), parted.model_dump())
        del ddf
        lazy: dict[str, Any] | None = None
        if args.lazy_rows:
            lp = -(-args.lazy_rows // prow)
            lsizes = [min(prow, args.lazy_rows - i * prow) for i in range(lp)]
            lazy_ddf = dd.from_map(make_partition, range(lp), lsizes, [feats] * lp, [args.seed + 1] * lp)
            t0 = time.perf_counter()
            lrep = measure_drift_dask(profile, lazy_ddf, cfg)
            lazy = {
                "rows": args.lazy_rows,
                "partitions": lp,
                "seconds_including_generation": time.perf_counter() - t0,
                "drifted": lrep.drifted_features,
                "peak_rss_note": "each worker holds about one partition at a time; nothing is persisted",
            }
        workers = len(client.scheduler_info()["workers"])

    sub = batch.iloc[: args.subsample]
    t0 = time.perf_counter()
    sub_report = measure_drift(profile, sub, cfg)
    sub_eg = time.perf_counter() - t0
    t0 = time.perf_counter()
    ks_raw = {c: ks_2samp(ref[c].to_numpy(), sub[c].to_numpy()) for c in cols}
    sub_sp = time.perf_counter() - t0
    load_after = os.getloadavg()
    results["machine"]["load_average_before_after"] = [load_before, load_after]
    results["machine"]["note"] = (
        "shared 2-core machine: other jobs ran concurrently; best-of-N, peers interleaved"
    )
    results["setup"] = {
        "profile_build_seconds": profile_seconds,
        "batch_generation_seconds_single_process": gen_seconds,
    }
    results["single_process"] = {
        "what": "measure_drift(profile, pandas batch) in this process",
        "seconds": single_t,
        "best_seconds": best(single_t),
        "drifted": single.drifted_features,
    }
    results["dask"] = {
        "what": f"measure_drift_dask on a LocalCluster ({workers} worker processes x 1 thread), data persisted on workers",
        "workers": workers,
        "seconds": dask_t,
        "best_seconds": best(dask_t),
        "drifted": parted.drifted_features,
        "equal_to_single_process": equality,
    }
    results["speedup_single_over_dask"] = best(single_t) / best(dask_t)
    if lazy:
        results["dask_lazy"] = lazy
    results["scipy_ks_2samp_subsample"] = {
        "what": f"ks_2samp per feature: {args.ref_rows} reference rows vs the first {len(sub)} batch rows",
        "rows": len(sub),
        "seconds": sub_sp,
        "evergreen_same_subsample_seconds": sub_eg,
        "ratio_scipy_over_evergreen": sub_sp / sub_eg,
        "drifted_p_lt_0.05": sorted(c for c in cols if ks_raw[c].pvalue < 0.05),
        "evergreen_drifted": sub_report.drifted_features,
    }
    ev_rows = min(len(sub), 100_000)
    results["evidently"] = run_evidently(
        args.evidently_python, ref.iloc[:ev_rows], sub.iloc[:ev_rows], 1, 900
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(
        f"{args.rows} x {feats}: single {best(single_t):.2f} s, dask({workers}) {best(dask_t):.2f} s, "
        f"equal={equality['equal']}; scipy on {len(sub)} rows {sub_sp:.2f} s vs evergreen {sub_eg:.2f} s"
        + (f"; lazy {lazy['rows']} rows {lazy['seconds_including_generation']:.1f} s" if lazy else "")
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
