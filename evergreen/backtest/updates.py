"""Warm-start updates in a replay: continue the champion with a few trees on its newest rows.

The same pure `evergreen.update.update_fit` as production (LightGBM `init_model`), memoised in the
replay cache like a full fit. CPU is `time.thread_time` around the call: fits are single-threaded
(n_jobs 1) and policies replay in parallel threads, so process time would charge one policy for
another's work.
"""

from __future__ import annotations

import json
import time

import pandas as pd

from evergreen import training
from evergreen.backtest.cache import Fitted, ReplayCache
from evergreen.spec import ModelSpec
from evergreen.spec_update import Update
from evergreen.update import update_fit


def mode_for(update: Update | None, updates_in_a_row: int, reason: str) -> str:
    """`update` or `full`, as production's choose_mode: full without update, after refit_every, or on drift."""
    if update is None:
        return "full"
    if update.refit_on_drift and reason == "drift":
        return "full"
    return "update" if updates_in_a_row < update.refit_every else "full"


def fit_update(
    cache: ReplayCache, spec: ModelSpec, champion: Fitted, end: int, update: Update, *, holdout: bool
) -> Fitted:
    """Continue `champion` with `update.trees` trees on rows of the last `update.window` before `end`.

    With `holdout`, the spec's hold-out (the newest rows) is left out of the update, for the gate.
    """
    key = json.dumps(
        {"update": update.model_dump(mode="json"), "champion": champion.key, "end": end, "holdout": holdout},
        sort_keys=True,
    )

    def compute() -> Fitted:
        replay = cache.replay
        tcol = spec.data.time_column
        hold: tuple[int, int] | None = None
        stop = end
        if holdout:
            sp = training.split(replay.frame.iloc[:end], spec)
            hold = (end - len(sp.holdout), end)
            stop = hold[0]
        times = replay.frame[tcol]
        since = times.iloc[stop - 1] - pd.Timedelta(update.window)
        first = int(times.iloc[:stop].searchsorted(since, side="right"))
        rows = replay.frame.iloc[first:stop]
        if len(rows) == 0 or champion.model is None:
            return Fitted(key, None, 0.0, (0, 0), 0, hold, error="no rows to update on")
        cpu = time.thread_time()
        try:
            model, _ = update_fit(
                champion.model,
                rows,
                replay.y[first:stop],
                spec.feature_names,
                update.trees,
                update.learning_rate,
            )
        except ValueError as exc:
            return Fitted(key, None, 0.0, (0, 0), 0, hold, error=str(exc))
        seconds = time.thread_time() - cpu
        return Fitted(key, model, seconds, (first, stop), len(rows), hold)

    return cache.memo(("update", key), "update", compute)
