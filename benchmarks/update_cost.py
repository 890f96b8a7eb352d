"""Where one warm-start update's CPU goes, beside a full fit of the same spec (docs/backtest.md).

Fits the shipped Elec2 spec on its first 20,000 rows, continues it four times (as a weekly update
policy would), then times one more 15-tree update on the next 4 weeks (1,344 rows) and its parts:
the pipeline's preprocessing, the booster's raw start scores, the LightGBM Dataset, growing the trees.
CPU is `time.thread_time` (fits are single-threaded), best of 5 repeats of 20 calls each.

    .venv/bin/python benchmarks/update_cost.py   # writes benchmarks/results/update_cost.json
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def best_ms(fn: Callable[[], object], calls: int = 20, repeats: int = 5) -> float:
    """Lowest mean CPU milliseconds per call over `repeats` rounds of `calls` calls."""
    best = float("inf")
    for _ in range(repeats):
        start = time.thread_time()
        for _ in range(calls):
            fn()
        best = min(best, (time.thread_time() - start) / calls * 1000)
    return round(best, 2)


def main() -> None:
    import lightgbm

    from evergreen import training
    from evergreen.datasets import prepare_elec2
    from evergreen.spec import load_spec
    from evergreen.update import update_fit

    spec = load_spec("elec2", ROOT / "models")
    frame = prepare_elec2(ROOT / "seeds" / "elec2" / "electricity.csv")
    history, rows = frame.iloc[:20000], frame.iloc[20000:21344]
    y = training.labels(rows, spec)
    champion, _ = training.fit(spec, history)
    for _ in range(4):
        champion, _ = update_fit(champion, rows, y, spec.feature_names, 15, 0.03)
    prep, booster = champion.named_steps["prep"], champion.named_steps["model"].booster_
    X = prep.transform(rows[spec.feature_names])
    params = {**booster.params, "num_iterations": 15, "learning_rate": 0.03}
    train, weights = training.apply_window(history, spec.training.window, spec.data.time_column)
    out = {
        "booster_trees": booster.num_trees(),
        "update_rows": len(rows),
        "update_ms": best_ms(lambda: update_fit(champion, rows, y, spec.feature_names, 15, 0.03)),
        "preprocess_ms": best_ms(lambda: prep.transform(rows[spec.feature_names])),
        "start_scores_ms": best_ms(lambda: booster.predict(X, raw_score=True)),
        "dataset_ms": best_ms(lambda: lightgbm.Dataset(X, y, params=params).construct()),
        "grow_15_trees_ms": best_ms(
            lambda: lightgbm.train(
                params, lightgbm.Dataset(X, y, params=params), 15, keep_training_booster=True
            )
        ),
        "full_fit_rows": len(train),
        "full_fit_ms": best_ms(lambda: training.fit(spec, train, weights), calls=3, repeats=3),
        "loadavg": os.getloadavg(),
        "cpu_count": os.cpu_count(),
        "lightgbm": lightgbm.__version__,
    }
    out["grow_15_trees_ms"] = round(out["grow_15_trees_ms"] - out["dataset_ms"], 2)
    path = ROOT / "benchmarks" / "results" / "update_cost.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
