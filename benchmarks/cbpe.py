"""Label-free performance estimation on Elec2: evergreen.estimate (CBPE) beside NannyML's CBPE.

Same batches, same champions, same reference data for both:

* every `--every` weekly batches after the 4 warm-up weeks, a champion is trained as the retrain flow's
  challenger is: the spec's training window with the spec's hold-out (the last labelled week) left out;
* the hold-out's scores and labels are the reference both methods calibrate on (evergreen:
  `fit_calibrator`; NannyML: `CBPE.fit`);
* each following weekly batch, until the next champion, is estimated by both from the champion's
  scores alone; the realised accuracy and ROC AUC come from its labels.

NannyML 0.13.1 does not install beside the project's pins: it requires plotly<6.0 (the project pins
plotly==7.1.0) and lightgbm<4.6 (the project pins lightgbm==4.7.0); `uv pip install --dry-run -r
requirements.lock nannyml==0.13.1` says so. So it runs in a subprocess of a separate venv, which needs
`nannyml==0.13.1 statsmodels pyarrow` (0.13.1 imports statsmodels without declaring it), e.g.:

    python3.11 -m venv /tmp/nannyml-venv
    /tmp/nannyml-venv/bin/pip install nannyml==0.13.1 statsmodels pyarrow pandas==3.1.1 numpy==2.4.6 \
        scikit-learn==1.9.1 scipy==1.17.1
    .venv/bin/python benchmarks/cbpe.py --nannyml-python /tmp/nannyml-venv/bin/python

Without that venv the JSON holds evergreen's numbers and the reason NannyML is missing.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evergreen import training  # noqa: E402
from evergreen.backtest.replay import prepare  # noqa: E402
from evergreen.datasets import seed_frame  # noqa: E402
from evergreen.estimate import estimate, fit_calibrator  # noqa: E402
from evergreen.metrics import metric_value  # noqa: E402
from evergreen.spec import load_spec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("accuracy", "roc_auc")

NANNYML_SCRIPT = r"""
import json, sys, time, warnings
import pandas as pd
import nannyml as nml
warnings.filterwarnings("ignore")
rows = pd.read_parquet(sys.argv[1])
out = {"version": nml.__version__, "batches": {}}
start = time.perf_counter()
for champ, grp in rows.groupby("champion"):
    ref = grp[grp.role == "reference"]
    est = nml.CBPE(problem_type="classification_binary", y_pred_proba="score", y_pred="pred",
                   y_true="y", metrics=["accuracy", "roc_auc"], chunk_number=1)
    est.fit(ref[["score", "pred", "y"]].reset_index(drop=True))
    for batch, cur in grp[grp.role == "analysis"].groupby("batch"):
        res = est.estimate(cur[["score", "pred"]].reset_index(drop=True)).filter(period="analysis").to_df()
        out["batches"][str(batch)] = {m: float(res[(m, "value")].iloc[0]) for m in ("accuracy", "roc_auc")}
out["seconds"] = time.perf_counter() - start
json.dump(out, open(sys.argv[2], "w"))
"""


def champions(frame: pd.DataFrame, every: int, warmup: int) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """Per scored batch: the realised metrics and evergreen's estimates; plus the rows NannyML needs."""
    spec = load_spec("elec2", ROOT / "models")
    replay = prepare(frame, spec, batch_period="7D", warmup=warmup)
    records: list[dict[str, Any]] = []
    rows: list[pd.DataFrame] = []
    for k in range(warmup, replay.n_batches, every):
        end = replay.bounds[k - 1][1]
        sp = training.split(replay.frame.iloc[:end], spec)
        model, _ = training.fit(spec, sp.train, sp.weights)
        ref_scores = training.predict_scores(model, sp.holdout, spec.feature_names)
        ref_y = training.labels(sp.holdout, spec)
        cal = fit_calibrator("binary", ref_y, ref_scores)
        rows.append(_rows(k, "reference", -1, ref_scores, ref_y))
        for i in range(k, min(k + every, replay.n_batches)):
            lo, hi = replay.bounds[i]
            s, y = (
                training.predict_scores(model, replay.frame.iloc[lo:hi], spec.feature_names),
                replay.y[lo:hi],
            )
            rows.append(_rows(k, "analysis", i, s, y))
            rec: dict[str, Any] = {"batch": i, "champion": k, "rows": hi - lo}
            for m in METRICS:
                rec[f"realised_{m}"] = metric_value(m, y, s)
                rec[f"evergreen_{m}"] = estimate(cal, s, m, n_sim=200).value
            records.append(rec)
    return records, pd.concat(rows, ignore_index=True)


def _rows(champion: int, role: str, batch: int, scores: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "champion": champion,
            "role": role,
            "batch": batch,
            "score": scores,
            "pred": (scores >= 0.5).astype(int),
            "y": y,
        }
    )


def run_nannyml(python: str, rows: pd.DataFrame, timeout: int) -> dict[str, Any]:
    """NannyML's estimates per batch, from its own venv (see the module docstring)."""
    if not Path(python).exists():
        return {"error": f"no NannyML venv at {python} (see benchmarks/cbpe.py for how to make one)"}
    with tempfile.TemporaryDirectory() as tmp:
        src, dst, script = Path(tmp) / "rows.parquet", Path(tmp) / "out.json", Path(tmp) / "nml.py"
        rows.to_parquet(src)
        script.write_text(NANNYML_SCRIPT)
        proc = subprocess.run(
            [python, str(script), str(src), str(dst)], capture_output=True, text=True, timeout=timeout
        )
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
        return json.loads(dst.read_text())


def mae(records: list[dict[str, Any]], who: str, metric: str) -> float | None:
    pairs = [
        (r[f"{who}_{metric}"], r[f"realised_{metric}"])
        for r in records
        if r.get(f"{who}_{metric}") is not None and np.isfinite(r[f"realised_{metric}"])
    ]
    return float(np.mean([abs(a - b) for a, b in pairs])) if pairs else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--every", type=int, default=4, help="weekly batches between champions")
    ap.add_argument("--warmup", type=int, default=4)
    ap.add_argument("--nannyml-python", default="/tmp/nannyml-venv/bin/python")
    ap.add_argument("--timeout", type=int, default=1800)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cbpe.json")
    args = ap.parse_args()

    start = time.perf_counter()
    records, rows = champions(seed_frame("elec2", ROOT / "seeds"), args.every, args.warmup)
    ours_seconds = time.perf_counter() - start
    nml = run_nannyml(args.nannyml_python, rows, args.timeout)
    for r in records:
        for m in METRICS:
            r[f"nannyml_{m}"] = nml.get("batches", {}).get(str(r["batch"]), {}).get(m)
    summary: dict[str, Any] = {}
    for m in METRICS:
        summary[m] = {
            "evergreen_mae": mae(records, "evergreen", m),
            "nannyml_mae": mae(records, "nannyml", m),
            "mean_abs_evergreen_minus_nannyml": _gap(records, m),
        }
    results = {
        "command": f".venv/bin/python benchmarks/cbpe.py --every {args.every} --warmup {args.warmup} "
        f"--nannyml-python {args.nannyml_python}",
        "data": "Elec2 seed data, weekly batches",
        "design": "a champion every N weekly batches (spec window, last labelled week held out); both methods "
        "calibrate on its hold-out scores and estimate the next N batches from scores alone",
        "batches": len(records),
        "champions": int(rows["champion"].nunique()),
        "summary": summary,
        "nannyml": {k: v for k, v in nml.items() if k != "batches"},
        "evergreen_seconds": ours_seconds,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "per_batch": records,
    }
    args.out.write_text(json.dumps(results, indent=2, default=_plain) + "\n")
    print(json.dumps({"summary": summary, "nannyml": results["nannyml"]}, indent=2))


def _gap(records: list[dict[str, Any]], m: str) -> float | None:
    gaps = [
        abs(r[f"evergreen_{m}"] - r[f"nannyml_{m}"])
        for r in records
        if r.get(f"nannyml_{m}") is not None and r.get(f"evergreen_{m}") is not None
    ]
    return float(np.mean(gaps)) if gaps else None


def _plain(x: Any) -> Any:
    return x.item() if hasattr(x, "item") else str(x)


if __name__ == "__main__":
    main()
