"""Retraining strategies side by side on one history (issue 12): batch, online and active learning.

A compact, self-contained replay (no gate, no triggers: `evergreen backtest` covers those) so that the
strategies are compared on exactly the same batches, with their real CPU cost:

- `static`:          the spec's model fitted on the warm-up batches, never retrained;
- `batch-weekly`:    the spec's model refitted before every batch on all labelled rows so far (its window);
- `online-batch`:    a river model updated once per batch (score the batch, then `partial_fit` it);
- `online-row`:      the same river model tested then trained row by row (prequential);
- `active-<s>`:      the spec's model refitted before every batch, but on labelled rows bought under a
                     budget per batch: the warm-up batches are labelled, then only `budget` of each batch,
                     chosen by uncertainty (`entropy`/`margin`) or at `random` (the control).

Every batch is scored on all its rows (labels are known in the history); CPU seconds are process time
for fitting, updating, predicting and selecting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from evergreen import active, metrics, online, training
from evergreen.backtest.replay import Replay
from evergreen.spec import ModelSpec

DEFAULT_RIVER = "river.tree.HoeffdingAdaptiveTreeClassifier"


@dataclass
class StrategyResult:
    """One strategy's replay: mean per-batch accuracy and metric, labels bought, fits, CPU seconds."""

    name: str
    mean_accuracy: float
    mean_metric: float
    labels_used: int
    fits: int
    cpu_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def river_spec(
    spec: ModelSpec, class_path: str = DEFAULT_RIVER, params: dict[str, Any] | None = None
) -> ModelSpec:
    """The same spec with a river estimator (online; no warm-start update)."""
    raw = spec.model_dump(mode="json", exclude_none=True)
    raw["training"]["estimator"] = {"kind": "river", "class_path": class_path, "params": params or {}}
    raw["training"].pop("update", None)
    return ModelSpec.model_validate(raw)


class _Scorer:
    """Per-batch accuracy and metric of positive-class scores (binary tasks)."""

    def __init__(self, replay: Replay) -> None:
        self.replay = replay
        self.acc: list[float] = []
        self.met: list[float] = []

    def add(self, i: int, scores: np.ndarray) -> None:
        s, e = self.replay.bounds[i]
        y = self.replay.y[s:e]
        self.acc.append(metrics.metric_value("accuracy", y, scores))
        if len(np.unique(y)) > 1:  # one class only in this batch: the metric is undefined
            self.met.append(metrics.metric_value(self.replay.spec.metric, y, scores))

    def result(self, name: str, labels: int, fits: int, cpu: float) -> StrategyResult:
        return StrategyResult(
            name=name, mean_accuracy=round(float(np.mean(self.acc)), 4),
            mean_metric=round(float(np.nanmean(self.met)), 4) if self.met else float("nan"),
            labels_used=labels, fits=fits, cpu_seconds=round(cpu, 2),
        )  # fmt: skip


def _fit(spec: ModelSpec, rows: pd.DataFrame) -> Any:
    train, weights = training.apply_window(rows, spec.training.window, spec.data.time_column)
    return training.fit(spec, train, weights)[0]


def _batch(replay: Replay, i: int) -> pd.DataFrame:
    s, e = replay.bounds[i]
    return replay.frame.iloc[s:e]


def _warm_end(replay: Replay) -> int:
    return replay.bounds[replay.warmup - 1][1]


def run_static(replay: Replay) -> StrategyResult:
    cpu, sc = time.process_time(), _Scorer(replay)
    model = _fit(replay.spec, replay.frame.iloc[: _warm_end(replay)])
    for i in range(replay.warmup, replay.n_batches):
        sc.add(i, training.predict_scores(model, _batch(replay, i), replay.spec.feature_names))
    return sc.result("static", _warm_end(replay), 1, time.process_time() - cpu)


def run_batch_weekly(replay: Replay) -> StrategyResult:
    cpu, sc, fits = time.process_time(), _Scorer(replay), 0
    for i in range(replay.warmup, replay.n_batches):
        model = _fit(replay.spec, replay.frame.iloc[: replay.bounds[i][0]])
        fits += 1
        sc.add(i, training.predict_scores(model, _batch(replay, i), replay.spec.feature_names))
    return sc.result("batch-weekly", replay.bounds[-1][1], fits, time.process_time() - cpu)


def run_online(replay: Replay, rspec: ModelSpec, per_row: bool) -> StrategyResult:
    """A river model fitted on the warm-up, then updated per batch or tested-then-trained per row."""
    cpu, sc = time.process_time(), _Scorer(replay)
    feats = rspec.feature_names
    pipe = training.fit(rspec, replay.frame.iloc[: _warm_end(replay)])[0]
    prep, clf = pipe.named_steps["prep"], pipe.named_steps["model"]
    for i in range(replay.warmup, replay.n_batches):
        s, e = replay.bounds[i]
        batch, y = _batch(replay, i), replay.y[s:e]
        if not per_row:
            sc.add(i, training.predict_scores(pipe, batch, feats))
            clf.partial_fit(prep.transform(batch[feats]), y)
            continue
        x = prep.transform(batch[feats])
        scores = np.empty(len(y))
        for k, (rec, target) in enumerate(zip(online._records(x), y.tolist(), strict=True)):
            probs = clf.model_.predict_proba_one(rec)
            total = sum(probs.values())
            scores[k] = float(probs.get(1, 0.0)) / total if total > 0 else 0.5
            clf.model_.learn_one(rec, int(target))
        clf.classes_ = np.union1d(clf.classes_, np.unique(y))
        sc.add(i, scores)
    name = "online-row" if per_row else "online-batch"
    return sc.result(name, replay.bounds[-1][1], 1, time.process_time() - cpu)


def run_active(replay: Replay, strategy: str, budget: float, seed: int = 0) -> StrategyResult:
    """Refit before each batch on the rows labelled so far; then buy `budget` of that batch's labels."""
    cpu, sc, fits = time.process_time(), _Scorer(replay), 0
    rng = np.random.default_rng(seed)
    feats = replay.spec.feature_names
    bought = [np.arange(_warm_end(replay))]
    for i in range(replay.warmup, replay.n_batches):
        model = _fit(replay.spec, replay.frame.iloc[np.concatenate(bought)])
        fits += 1
        s, _ = replay.bounds[i]
        batch = _batch(replay, i)
        scores = training.predict_scores(model, batch, feats)
        sc.add(i, scores)  # scored on every row; labels are then bought for `budget` of them
        picked = active.select(scores, active.budget_rows(len(batch), budget), strategy, rng)
        bought.append(s + picked)
    labels = int(sum(len(b) for b in bought))
    return sc.result(f"active-{strategy}", labels, fits, time.process_time() - cpu)


def compare(
    replay: Replay,
    *,
    river_class: str = DEFAULT_RIVER,
    river_params: dict[str, Any] | None = None,
    budget: float = 0.1,
    seed: int = 0,
    on_done: Callable[[StrategyResult], None] | None = None,
) -> list[StrategyResult]:
    """Every strategy over the same replay, in a fixed order."""
    if replay.spec.task != "binary":
        raise ValueError("the strategy comparison supports binary tasks (positive-class scores)")
    rspec = river_spec(replay.spec, river_class, river_params)
    runs: list[Callable[[], StrategyResult]] = [
        lambda: run_static(replay),
        lambda: run_batch_weekly(replay),
        lambda: run_online(replay, rspec, per_row=False),
        lambda: run_online(replay, rspec, per_row=True),
        lambda: run_active(replay, "margin", budget, seed),
        lambda: run_active(replay, "random", budget, seed),
    ]
    out = []
    for run in runs:
        out.append(run())
        if on_done is not None:
            on_done(out[-1])
    return out
