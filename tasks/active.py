"""Active-learning tasks (issue 12): score an unlabelled batch with the champion, pick rows, write the queue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from adapters import mlflow_registry
from evergreen import active, training
from evergreen.settings import get_settings
from evergreen.spec import ModelSpec

UNCERTAINTY = "uncertainty"


def unlabelled_rows(spec: ModelSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of a batch still waiting for their label (all of them if the target column is absent)."""
    if spec.data.target not in frame.columns:
        return frame.reset_index(drop=True)
    return frame[frame[spec.data.target].isna()].reset_index(drop=True)


@task(cache_policy=NO_CACHE)
def select_rows(
    spec: ModelSpec, rows: pd.DataFrame, k: int, strategy: str, seed: int = 0
) -> tuple[pd.DataFrame, str | None]:
    """The queue: `k` selected rows (most uncertain under the champion, or random) and the champion version.

    Uncertainty needs a champion; the random control does not (but is scored when one exists).
    """
    champ = mlflow_registry.get_champion(mlflow_registry.client(get_settings()), spec.name)
    if champ is None and strategy != "random":
        raise ValueError(f"{spec.name} has no champion to rank rows by uncertainty: use --strategy random")
    if champ is None:
        picked = np.sort(active.select(np.zeros(len(rows)), k, "random", seed))
        return rows.iloc[picked].assign(**{UNCERTAINTY: np.nan}), None
    model = mlflow_registry.load_sklearn(champ.model_uri)
    scores = training.predict_scores(model, rows, spec.feature_names)
    picked = np.sort(active.select(scores, k, strategy, seed))
    uncertainty = active.uncertainty(scores, "margin")[picked]
    return rows.iloc[picked].assign(**{UNCERTAINTY: np.round(uncertainty, 4)}), str(champ.version)


def queue_path(model: str, source: str, strategy: str, out_dir: str | None) -> Path:
    """<out_dir or EVERGREEN_HOME/label-queue/<model>>/<batch stem>-<strategy>.csv"""
    folder = Path(out_dir) if out_dir else get_settings().home_abs / "label-queue" / model
    return folder / f"{Path(source).stem}-{strategy}.csv"


@task(cache_policy=NO_CACHE)
def write_queue(queue: pd.DataFrame, spec: ModelSpec, id_col: str, path: Path) -> Path:
    """The queue file: id, time, features, uncertainty and an empty target column for the labeller."""
    cols = [id_col, spec.data.time_column, *spec.feature_names, UNCERTAINTY]
    out = queue[[c for c in dict.fromkeys(cols) if c in queue.columns]].assign(**{spec.data.target: None})
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False)
    return path


def ledger_path(model: str) -> Path:
    """Every label request of the model, one JSON line each: the period budget is read from it."""
    return get_settings().home_abs / "label-queue" / model / "requests.jsonl"


def read_ledger(model: str) -> list[dict[str, Any]]:
    path = ledger_path(model)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_ledger(model: str, entry: dict[str, Any]) -> None:
    path = ledger_path(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write(json.dumps(entry) + "\n")
