"""Shared, thread-safe memo of fits, scores, profiles and verdicts over one replay."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from evergreen import gate, training
from evergreen.backtest.replay import Replay
from evergreen.backtest.results import finite_or_none
from evergreen.drift import DriftReport, ReferenceProfile, build_profile, measure_drift
from evergreen.drift.impact import feature_importance
from evergreen.drift.multivariate import reference_sample
from evergreen.metrics import metric_value
from evergreen.performance import PerformanceReport, measure_performance
from evergreen.spec import DriftTrigger, ModelSpec


@dataclass(frozen=True)
class Fitted:
    """A trained model and where its rows came from (row indices into Replay.frame)."""

    key: str
    model: Any
    seconds: float
    train: tuple[int, int]
    train_rows: int
    holdout: tuple[int, int] | None
    error: str | None = None


class ReplayCache:
    """Memoises fits, scores, profiles and verdicts over one Replay, safely across threads.

    Each key is computed once (others asking for it wait), so policies running in parallel share
    work. `timings` sums the CPU seconds (of the computing thread) of actual computation per kind
    (fit, predict, metric, gate, drift, performance, profile); cache hits cost nothing there. Nested
    work is counted in both kinds (a gate's or a metric's first scores also count as predict).
    """

    def __init__(self, replay: Replay) -> None:
        self.replay = replay
        self._items: dict[Any, Any] = {}
        self._locks: dict[Any, threading.Lock] = {}
        self._lock = threading.Lock()
        self._spans: dict[str, list[tuple[int, int, np.ndarray]]] = {}
        self._ahead: dict[str, int] = {}
        self.timings: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def __getstate__(self) -> dict[str, Any]:
        # Locks do not pickle: a copy sent to another process (a Dask worker, tasks/dask.py) starts
        # with fresh locks and an empty memo; policies on one worker process still share theirs.
        state = self.__dict__.copy()
        state.update(_items={}, _locks={}, _lock=None, _spans={}, _ahead={}, timings={}, counts={})
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _get(self, key: Any, kind: str, compute: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                return self._items[key]
            klock = self._locks.setdefault(key, threading.Lock())
        with klock:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            start = time.thread_time()
            value = compute()
            took = time.thread_time() - start
            with self._lock:
                self._items[key] = value
                self.timings[kind] = self.timings.get(kind, 0.0) + took
                self.counts[kind] = self.counts.get(kind, 0) + 1
            return value

    def memo(self, key: Any, kind: str, compute: Callable[[], Any]) -> Any:
        """Compute once per key (thread-safe), timed under `kind`: for work other modules add to a replay."""
        return self._get(key, kind, compute)

    def stats(self) -> dict[str, Any]:
        """compute_seconds and compute_calls for a BacktestReport."""
        with self._lock:
            return {
                "compute_seconds": {k: round(v, 3) for k, v in sorted(self.timings.items())},
                "compute_calls": dict(sorted(self.counts.items())),
            }

    @staticmethod
    def model_key(spec: ModelSpec, end: int, holdout: bool) -> str:
        t = spec.training
        return json.dumps(
            {
                "window": t.window.model_dump(mode="json"),
                "estimator": t.estimator.model_dump(mode="json"),
                "seed": t.seed,
                "min_rows": t.min_train_rows,
                "holdout": t.holdout.model_dump(mode="json") if holdout else None,
                "end": end,
            },
            sort_keys=True,
        )

    def fit(self, spec: ModelSpec, end: int, *, holdout: bool) -> Fitted:
        """Train on rows [0, end) under the spec's window; with `holdout`, the spec's hold-out is left out."""
        key = self.model_key(spec, end, holdout)

        def compute() -> Fitted:
            pool = self.replay.frame.iloc[:end]
            hold: tuple[int, int] | None = None
            try:
                if holdout:
                    sp = training.split(pool, spec)
                    train, weights = sp.train, sp.weights
                    hold = (end - len(sp.holdout), end)
                else:
                    train, weights = training.apply_window(pool, spec.training.window, spec.data.time_column)
                    if len(train) < spec.training.min_train_rows:
                        raise ValueError(
                            f"only {len(train)} training rows; training.min_train_rows is "
                            f"{spec.training.min_train_rows}"
                        )
                cpu = time.thread_time()
                model, _wall = training.fit(spec, train, weights)
                seconds = time.thread_time() - cpu
            except ValueError as exc:
                return Fitted(key, None, 0.0, (0, 0), 0, hold, error=str(exc))
            first = int(train.index[0])
            return Fitted(key, model, seconds, (first, first + len(train)), len(train), hold)

        return self._get(("fit", key), "fit", compute)

    def scores(self, fitted: Fitted, lo: int, hi: int) -> np.ndarray:
        """The model's scores on rows [lo, hi).

        A predict call costs about 20 ms of fixed overhead on top of ~10 us per row, and a champion
        usually scores the rows that follow, so each miss predicts ahead: twice the asked rows at
        first, doubling with every further miss of the same model. Tree scores of a row do not depend
        on the other rows in the call, so the values are the same as one call per batch.
        """
        with self._lock:
            klock = self._locks.setdefault(("spans", fitted.key), threading.Lock())
        with klock:
            spans = self._spans.setdefault(fitted.key, [])
            for a, b, values in spans:
                if a <= lo and hi <= b:
                    return values[lo - a : hi - a]
            ahead = self._ahead.get(fitted.key, 2 * (hi - lo))
            end = min(len(self.replay.frame), max(hi, lo + ahead))
            start = time.thread_time()
            values = training.predict_scores(
                fitted.model, self.replay.frame.iloc[lo:end], self.replay.spec.feature_names
            )
            took = time.thread_time() - start
            spans.append((lo, end, values))
            self._ahead[fitted.key] = 2 * (end - lo)
            with self._lock:
                self.timings["predict"] = self.timings.get("predict", 0.0) + took
                self.counts["predict"] = self.counts.get("predict", 0) + 1
            return values[: hi - lo]

    def metric(self, fitted: Fitted, i: int, name: str) -> float | None:
        """The metric of the model's scores on batch i (shared by every policy with this champion)."""

        def compute() -> float | None:
            lo, hi = self.replay.bounds[i]
            return finite_or_none(metric_value(name, self.replay.y[lo:hi], self.scores(fitted, lo, hi)))

        return self._get(("metric", fitted.key, i, name), "metric", compute)

    def profile(self, fitted: Fitted, bins: int) -> ReferenceProfile:
        spec = self.replay.spec

        def compute() -> ReferenceProfile:
            a, b = fitted.train
            train = self.replay.frame.iloc[a:b]
            return build_profile(
                train,
                spec.numeric,
                spec.categorical,
                bins=bins,
                labels=self.replay.y[a:b],
                task=spec.task,
                importance=feature_importance(fitted.model, spec.feature_names),  # as registration stores
            )

        return self._get(("profile", fitted.key, bins), "profile", compute)

    def reference(self, fitted: Fitted, rows: int) -> pd.DataFrame:
        """The reference sample registration stores for this model (multivariate drift)."""
        spec = self.replay.spec

        def compute() -> pd.DataFrame:
            a, b = fitted.train
            train = self.replay.frame.iloc[a:b]
            return reference_sample(
                train, spec.feature_names, spec.data.time_column, rows, spec.training.seed
            )

        return self._get(("reference", fitted.key, rows), "profile", compute)

    def drift(self, fitted: Fitted, i: int, cfg: DriftTrigger) -> DriftReport:
        spec = self.replay.spec

        def compute() -> DriftReport:
            lo, hi = self.replay.bounds[i]
            batch = self.replay.frame.iloc[lo:hi]
            mv = cfg.multivariate
            ref = self.reference(fitted, mv.reference_rows) if mv.enabled else None
            return measure_drift(
                self.profile(fitted, cfg.bins), batch, cfg, features=spec.features, reference=ref
            )

        return self._get(("drift", fitted.key, i, cfg.model_dump_json()), "drift", compute)

    def performance(
        self, fitted: Fitted, i: int, metric: str, reference: float | None, floor: float | None, alpha: float
    ) -> PerformanceReport:
        def compute() -> PerformanceReport:
            lo, hi = self.replay.bounds[i]
            return measure_performance(
                metric,
                self.replay.y[lo:hi],
                self.scores(fitted, lo, hi),
                reference=reference,
                floor=floor,
                alpha=alpha,
            )

        return self._get(("perf", fitted.key, i, metric, reference, floor, alpha), "performance", compute)

    def lineage_bounds(self, fitted: Fitted) -> dict[str, str]:
        """The `train_end` / `holdout_end` / `refit` tags production's registration writes for this model.

        A backtest refit is a fit without a hold-out whose training rows run to the end, so its
        `train_end` already covers what a production refit's `holdout_end` adds.
        """
        times = self.replay.frame[self.replay.spec.data.time_column]
        tags = {
            "train_end": str(times.iloc[fitted.train[1] - 1]) if fitted.train[1] > 0 else "",
            "refit": "false",
        }
        if fitted.holdout is not None:
            tags["holdout_end"] = str(times.iloc[fitted.holdout[1] - 1])
        return tags

    def gate(self, spec: ModelSpec, challenger: Fitted, champion: Fitted) -> gate.GateDecision:
        """Production's gate: only hold-out rows the champion never trained on count (issue 9 case 7).

        The same pure functions as the retrain flow: `training.champion_trained_until` on the
        champion's lineage bounds, `training.unseen_holdout`, and `gate.with_evidence` (fewer than
        `gate.min_holdout_rows` unseen rows is 'insufficient evidence', never a pass).
        """
        assert challenger.holdout is not None
        lo, hi = challenger.holdout

        def compute() -> gate.GateDecision:
            holdout = self.replay.frame.iloc[lo:hi]
            trained_until = training.champion_trained_until(self.lineage_bounds(champion))
            unseen = training.unseen_holdout(holdout, spec.data.time_column, trained_until)
            enough = len(unseen) >= spec.gate.min_holdout_rows
            # The frame is time-sorted, so the unseen rows are the hold-out's tail. Too few: scored on
            # the whole hold-out for the record, as production does, and not judged.
            start = hi - len(unseen) if enough else lo
            y = self.replay.y[start:hi]
            chal = self.scores(challenger, start, hi)
            champ = self.scores(champion, start, hi)
            # Latency is not replayed: it measures this machine now, not the policy.
            verdict = gate.decide(spec.gate, spec.metric, y, chal, champ, latency_p95_ms=None)
            if not spec.gate.enabled:
                return verdict
            return gate.with_evidence(
                verdict,
                unseen_rows=len(unseen),
                excluded_rows=len(holdout) - len(unseen),
                min_rows=spec.gate.min_holdout_rows,
            )

        key = ("gate", challenger.key, champion.key, spec.gate.model_dump_json(), spec.metric)
        return self._get(key, "gate", compute)
