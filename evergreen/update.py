"""Warm-start updates (issue 11 part 2): continue the champion's LightGBM booster with a few trees.

Pure logic: which mode a retrain uses (from the champion's lineage tags) and the update fit itself.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from evergreen.spec_update import Update

MODE_TAG = "evergreen.training_mode"
COUNT_TAG = "evergreen.update_count"
BASE_TAG = "evergreen.base_version"


def choose_mode(update: Update | None, champion_tags: dict[str, str] | None, reason: str = "") -> str:
    """`update` or `full`: update only with a spec'd update, a champion, under refit_every, and no drift refit."""
    if update is None or champion_tags is None:
        return "full"
    if update.refit_on_drift and reason == "drift":
        return "full"
    count = int(champion_tags.get(COUNT_TAG, "0") or 0)
    return "update" if count < update.refit_every else "full"


def lineage_tags(
    mode: str, champion_tags: dict[str, str] | None, champion_version: str | None
) -> dict[str, str]:
    """Tags for the new version: its mode, updates since the last full fit, and the version it builds on."""
    if mode == "full" or champion_tags is None:
        return {MODE_TAG: "full", COUNT_TAG: "0"}
    count = int(champion_tags.get(COUNT_TAG, "0") or 0) + 1
    return {MODE_TAG: "update", COUNT_TAG: str(count), BASE_TAG: str(champion_version or "")}


def update_fit(
    champion: Pipeline, frame: pd.DataFrame, y: np.ndarray, features: list[str], trees: int
) -> tuple[Pipeline, float]:
    """Continue the champion with `trees` more trees on `frame`; returns the new pipeline and its CPU seconds.

    The champion's fitted preprocessing is kept (same encodings the base trees were grown on); the champion
    itself is not modified.
    """
    base = champion.named_steps["model"]
    if not hasattr(base, "booster_"):
        raise ValueError(
            "training.update: the champion is not a LightGBM model; warm-start updates need lightgbm"
        )
    prep = copy.deepcopy(champion.named_steps["prep"])
    model = clone(base).set_params(n_estimators=trees)
    start = time.process_time()
    model.fit(prep.transform(frame[features]), y, init_model=base.booster_)
    seconds = time.process_time() - start
    pipe = Pipeline([("prep", prep), ("model", model)])
    for attr in ("evergreen_task", "evergreen_n_classes", "evergreen_labels"):
        if hasattr(champion, attr):
            setattr(pipe, attr, getattr(champion, attr))
    return pipe, seconds
