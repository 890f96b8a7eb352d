"""Online learners on Elec2 (issue 12): updated per weekly batch, and per row (test-then-train).

The same replay as the backtester (benchmarks/backtest.py): weekly Elec2 batches, the first 4 are the
warm-up the first model trains on, every later batch is scored by the model as it stands and then
learned. Metrics are per-batch means like the backtester's (`mean_accuracy`, `mean_roc_auc`), so the
rows print beside its batch policies (read from benchmarks/results/backtest.json when present).

- ``per-batch``: the deployed model is the one after the last batch; a week is scored whole, then the
  model learns it (what `training.online` does with one retrain per ingested batch);
- ``per-row``: prequential, each row is scored, then learned at once (labels arrive with the row).

Both learn every row exactly once, so their learning cost is the same; per-row sees each label before
the next prediction, per-batch waits a week. CPU seconds are process CPU for the whole replay
(learning and scoring, through the same sklearn Pipeline Evergreen registers).

    .venv/bin/python benchmarks/online_elec2.py [--learners arf,hat,logreg] [--out benchmarks/results]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LEARNERS: dict[str, dict[str, Any]] = {
    "arf": {"class_path": "river.forest.ARFClassifier", "params": {"n_models": 10}},
    "hat": {"class_path": "river.tree.HoeffdingAdaptiveTreeClassifier", "params": {}},
    "logreg": {"class_path": "river.linear_model.LogisticRegression", "params": {}},
}
WARMUP = 4


def replay(name: str, mode: str, batches: list[Any], spec: Any) -> dict[str, Any]:
    """Mean per-batch accuracy / ROC AUC of one learner after the warm-up, and its CPU seconds."""
    from evergreen import training
    from evergreen.metrics import metric_value
    from evergreen.online import _records

    cpu, wall = time.process_time(), time.perf_counter()
    warm = training.sort_by_time(
        __import__("pandas").concat(batches[:WARMUP], ignore_index=True), spec.data.time_column
    )
    pipe, _ = training.fit(spec, warm)
    prep, model = pipe.named_steps["prep"], pipe.named_steps["model"]
    accs, aucs = [], []
    for batch in batches[WARMUP:]:
        y = training.labels(batch, spec)
        X = prep.transform(batch[spec.feature_names])
        if mode == "per-batch":
            scores = training.predict_scores(pipe, batch, spec.feature_names)
            model.partial_fit(X, y)
        else:  # test-then-train, row by row, on the river model behind the same prep
            scores = np.empty(len(y))
            river = model.model_
            for i, (x, target) in enumerate(zip(_records(X), y.tolist(), strict=True)):
                scores[i] = float(river.predict_proba_one(x).get(1, 0.0))
                river.learn_one(x, target)
            model.n_learned_ += len(y)
        accs.append(metric_value("accuracy", y, scores))
        aucs.append(metric_value("roc_auc", y, scores))
    return {
        "learner": name,
        "class_path": LEARNERS[name]["class_path"],
        "params": LEARNERS[name]["params"],
        "mode": mode,
        "batches_scored": len(accs),
        "rows_learned": int(model.n_learned_),
        "mean_accuracy": round(float(np.mean(accs)), 4),
        "mean_roc_auc": round(float(np.nanmean(aucs)), 4),
        "cpu_seconds": round(time.process_time() - cpu, 2),
        "wall_seconds": round(time.perf_counter() - wall, 2),
        "registered_versions_if_deployed": len(accs) if mode == "per-batch" else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--learners", default=",".join(LEARNERS))
    ap.add_argument("--modes", default="per-batch,per-row")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()

    from evergreen.datasets import seed_frame, weekly_batches
    from evergreen.spec import load_spec_file

    base = load_spec_file(ROOT / "models" / "elec2.yaml")
    frame = seed_frame("elec2", ROOT / "seeds")
    batches = weekly_batches(frame, base.data.time_column)
    rows = []
    for name in args.learners.split(","):
        spec = base.with_overrides(
            {
                "training.estimator.kind": "river",
                "training.estimator.class_path": LEARNERS[name]["class_path"],
                "training.estimator.params": LEARNERS[name]["params"],
                "training.window": {"kind": "all"},
            }
        )
        for mode in args.modes.split(","):
            row = replay(name, mode, batches, spec)
            print(json.dumps(row), flush=True)
            rows.append(row)
    batch_table = ROOT / "benchmarks" / "results" / "backtest.json"
    batch_rows = json.loads(batch_table.read_text())["table"] if batch_table.exists() else []
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "online_elec2.json").write_text(
        json.dumps(
            {
                "what": f"online learners on {len(batches)} weekly Elec2 batches, {WARMUP} warm-up",
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "online": rows,
                "batch_policies_from": "benchmarks/results/backtest.json (benchmarks/backtest.py)",
                "batch_policies": [
                    {
                        k: r.get(k)
                        for k in ("policy", "mean_accuracy", "mean_roc_auc", "retrains", "train_seconds")
                    }
                    for r in batch_rows
                ],
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
