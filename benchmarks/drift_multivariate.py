"""Calibration and power of the multivariate (domain classifier) drift test, and its cost.

H0 batches: reference and batch drawn independently from one distribution (x2 = x1 + noise, x3
independent); each trial draws a fresh reference, so the false-positive rate is the test's size. H1
batches: the issue's correlation flip (x2 = -x1 + noise, same marginals). Two p-values on the same
out-of-fold scores:

* `pooled`: one Mann-Whitney test on all out-of-fold scores (AUC = U / (n0 n1));
* `per_fold_bonferroni`: evergreen.drift.multivariate's p-value: the smallest per-fold Mann-Whitney
  p-value times the number of folds.

    .venv/bin/python benchmarks/drift_multivariate.py [--trials 200]

writes benchmarks/results/drift_multivariate.json and prints it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy.stats import mannwhitneyu
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from evergreen import training
from evergreen.drift.multivariate import _CLASSIFIER, FOLDS, _design, domain_classifier

FEATURES = ["x1", "x2", "x3"]
OUT = Path(__file__).parent / "results" / "drift_multivariate.json"


def draw(rng: np.random.Generator, n: int, flip: bool = False) -> pd.DataFrame:
    x1 = rng.normal(0.0, 1.0, n)
    x2 = (-x1 if flip else x1) + rng.normal(0.0, 0.5, n)
    return pd.DataFrame({"x1": x1, "x2": x2, "x3": rng.normal(0.0, 1.0, n)})


def pooled_p(reference: pd.DataFrame, batch: pd.DataFrame, seed: int) -> float:
    """The rejected alternative: Mann-Whitney on the pooled out-of-fold scores (cross_val_predict)."""
    from lightgbm import LGBMClassifier

    x = _design(reference, batch, FEATURES)
    y = np.r_[np.zeros(len(reference), dtype=int), np.ones(len(batch), dtype=int)]
    cv = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    s = cross_val_predict(
        LGBMClassifier(random_state=seed, **_CLASSIFIER), x, y, cv=cv, method="predict_proba"
    )[:, 1]
    return float(mannwhitneyu(s[y == 1], s[y == 0], alternative="greater").pvalue)


def elec2_cost() -> dict[str, Any]:
    """An Elec2 champion's importance on weeks 0-8, its reference sample's size (the default 2000 rows)
    and one test of week 9 (336 rows) against it."""
    from evergreen.datasets import prepare_elec2, weekly_batches
    from evergreen.drift.impact import feature_importance
    from evergreen.drift.multivariate import read_sample, sample_bytes
    from evergreen.spec import parse_spec

    root = Path(__file__).resolve().parents[1]
    weeks = weekly_batches(prepare_elec2(root / "seeds" / "elec2" / "electricity.csv"), "timestamp")
    train = pd.concat(weeks[:9], ignore_index=True)
    cols = ["day", "period", "nswprice", "nswdemand", "vicprice", "vicdemand", "transfer"]
    blob = sample_bytes(train, cols, "timestamp", 2000, 42)
    reference = read_sample(blob)
    start = time.perf_counter()
    res = domain_classifier(reference, weeks[9], cols, alpha=0.01)
    assert res is not None
    spec = parse_spec(yaml.safe_load((root / "models" / "elec2.yaml").read_text()))
    champion, _ = training.fit(spec, train)
    return {
        "elec2_importance_weeks_0_8": feature_importance(champion, spec.feature_names),
        "elec2_reference_sample_bytes": len(blob),
        "elec2_training_rows": len(train),
        "elec2_seconds_per_test": round(time.perf_counter() - start, 3),
        "elec2_week9_auc": round(res.auc, 3),
    }


def rates(p: np.ndarray) -> dict[str, float]:
    return {str(a): float(np.mean(p < a)) for a in (0.01, 0.05, 0.1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--reference-rows", type=int, default=1000)
    ap.add_argument("--batch-rows", type=int, default=300)
    args = ap.parse_args()
    rng = np.random.default_rng(2026)
    null_pooled, null_bonf, aucs, flips = [], [], [], []
    start = time.perf_counter()
    for i in range(args.trials):
        ref, batch = draw(rng, args.reference_rows), draw(rng, args.batch_rows)
        res = domain_classifier(ref, batch, FEATURES, alpha=0.05, seed=i)
        assert res is not None
        null_bonf.append(res.p_value)
        aucs.append(res.auc)
        null_pooled.append(pooled_p(ref, batch, i))
    seconds = time.perf_counter() - start
    for i in range(20):
        res = domain_classifier(
            draw(rng, args.reference_rows),
            draw(rng, args.batch_rows, flip=True),
            FEATURES,
            alpha=0.01,
            seed=i,
        )
        assert res is not None
        flips.append(res.significant)
    out = {
        **elec2_cost(),
        "command": f"python benchmarks/drift_multivariate.py --trials {args.trials}",
        "reference_rows": args.reference_rows,
        "batch_rows": args.batch_rows,
        "trials": args.trials,
        "null_false_positive_rate": {
            "pooled": rates(np.array(null_pooled)),
            "per_fold_bonferroni": rates(np.array(null_bonf)),
        },
        "null_auc_mean": float(np.mean(aucs)),
        "null_auc_std": float(np.std(aucs)),
        "mann_whitney_auc_std": float(
            np.sqrt(
                (args.reference_rows + args.batch_rows + 1) / (12 * args.reference_rows * args.batch_rows)
            )
        ),
        "flip_flagged_of_20_at_0.01": int(sum(flips)),
        "seconds_per_test_with_pooled_alternative": round(seconds / args.trials, 4),
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
