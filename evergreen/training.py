"""Time-based split, training window and estimator construction from a ModelSpec."""

from __future__ import annotations

import importlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from evergreen.spec import ModelSpec, Window

if TYPE_CHECKING:  # sklearn is imported where a pipeline is built: seconds of every flow-run start
    from sklearn.pipeline import Pipeline

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    """Rows to train on (with optional weights) and the most recent hold-out they exclude."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    weights: np.ndarray | None

    def bounds(self, time_column: str) -> dict[str, str]:
        t, h = self.train[time_column], self.holdout[time_column]
        return {
            "train_start": str(t.min()),
            "train_end": str(t.max()),
            "holdout_start": str(h.min()),
            "holdout_end": str(h.max()),
        }


def labels(frame: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    """Model-ready targets per task type.

    binary: 0/1, 1 where the target equals the positive label; multiclass: the index of the class in
    `data.labels` (-1 for a value outside it, which validation rejects first); regression: floats.
    """
    target = frame[spec.data.target]
    if spec.task == "regression":
        return pd.to_numeric(target, errors="coerce").to_numpy(dtype=float)
    if spec.task == "multiclass":
        index = {v: i for i, v in enumerate(spec.class_labels)}
        return target.map(index).fillna(-1).to_numpy(dtype=np.int64)
    return (target == spec.data.positive_label).to_numpy(dtype=np.int8)


def sort_by_time(frame: pd.DataFrame, time_column: str) -> pd.DataFrame:
    """Stable time order; ingest order breaks ties so replays are reproducible."""
    if frame[time_column].is_monotonic_increasing:
        return frame.reset_index(drop=True)
    return frame.sort_values(time_column, kind="stable").reset_index(drop=True)


def split_holdout(frame: pd.DataFrame, spec: ModelSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The most recent labelled window is the hold-out; everything before it may be trained on."""
    tcol = spec.data.time_column
    frame = sort_by_time(frame.dropna(subset=[spec.data.target]), tcol)
    h = spec.training.holdout
    if h.rows is not None:
        cut = max(len(frame) - h.rows, 0)
        return frame.iloc[:cut], frame.iloc[cut:]
    start = frame[tcol].iloc[-1] - pd.Timedelta(h.period)
    mask = (frame[tcol] > start).to_numpy()
    return frame.loc[~mask], frame.loc[mask]


def apply_window(
    pool: pd.DataFrame, window: Window, time_column: str
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Select the training rows from the pool per the window policy; decay returns sample weights."""
    if pool.empty or window.kind == "all":
        return pool, None
    t = pool[time_column]
    if window.kind == "rolling":
        if window.rows is not None:
            return pool.iloc[-window.rows :], None
        return pool.loc[t > t.iloc[-1] - pd.Timedelta(window.period)], None
    age = (t.iloc[-1] - t) / pd.Timedelta(window.half_life)
    return pool, np.power(0.5, age.to_numpy(dtype=float))


def split(frame: pd.DataFrame, spec: ModelSpec) -> Split:
    """Hold-out plus windowed training rows; raises if either is too small to be meaningful."""
    pool, holdout = split_holdout(frame, spec)
    train, weights = apply_window(pool, spec.training.window, spec.data.time_column)
    if len(train) < spec.training.min_train_rows:
        raise ValueError(
            f"only {len(train)} training rows before the hold-out; "
            f"training.min_train_rows is {spec.training.min_train_rows}"
        )
    if holdout.empty:
        raise ValueError("the hold-out window is empty: no labelled rows in training.holdout")
    return Split(train=train, holdout=holdout, weights=weights)


def champion_trained_until(tags: dict[str, str] | None) -> str | None:
    """The time of the last row the champion learned from, from its lineage tags (None: no champion).

    `train_end` is the last training row; a refit also learned its hold-out, so `holdout_end` counts then.
    """
    if not tags:
        return None
    ends = [tags.get("train_end") or ""]
    if tags.get("refit") == "true":
        ends.append(tags.get("holdout_end") or "")
    ends = [e for e in ends if e and e not in ("NaT", "nan")]
    return max(ends, key=_sort_key) if ends else None


def _sort_key(value: str) -> tuple[int, float | str]:
    try:
        return (0, float(pd.Timestamp(value).value))
    except (ValueError, TypeError):
        return (1, value)


def _parse_like(column: pd.Series, value: str) -> object:
    """A bound tag (str) in the column's own type, so the comparison is by time or number, not text."""
    if pd.api.types.is_datetime64_any_dtype(column):
        bound = pd.Timestamp(value)
        tz = getattr(column.dt, "tz", None)
        if tz is not None and bound.tzinfo is None:
            bound = bound.tz_localize(tz)
        return bound
    if pd.api.types.is_numeric_dtype(column):
        return float(value)
    return value


def unseen_holdout(holdout: pd.DataFrame, time_column: str, trained_until: str | None) -> pd.DataFrame:
    """The hold-out rows strictly after `trained_until` (the champion's last training row).

    The challenger never saw its hold-out; these rows are the ones the champion never saw either,
    so the gate compares the two fairly.
    """
    if trained_until is None or holdout.empty:
        return holdout
    col = holdout[time_column]
    return holdout.loc[(col > _parse_like(col, trained_until)).to_numpy()]


def refit_rows(frame: pd.DataFrame, spec: ModelSpec) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The rows (and weights) of a refit after a passed gate: the window over everything labelled, hold-out included."""
    labelled = sort_by_time(frame.dropna(subset=[spec.data.target]), spec.data.time_column)
    return apply_window(labelled, spec.training.window, spec.data.time_column)


def _import(path: str) -> type:
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"training.estimator.class_path: cannot import {path!r}: {exc}") from None


def _category_encoders(spec: ModelSpec, lightgbm: bool) -> list[tuple[str, object, list[str]]]:
    """One encoder per categorical feature: its spec `categories`, or those seen in training ("auto").

    Unknown categories never fail a prediction: LightGBM gets NaN (routed as missing), one-hot gets
    all zeros. Whether they may reach the model at all is the ingest check's job (`allow_unknown`).
    """
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    out: list[tuple[str, object, list[str]]] = []
    for name in spec.categorical:
        cats: object = [spec.feature(name).categories] if spec.feature(name).categories else "auto"
        enc: object
        if lightgbm:
            enc = OrdinalEncoder(
                categories=cats,  # type: ignore[arg-type]
                handle_unknown="use_encoded_value",
                unknown_value=np.nan,
                encoded_missing_value=np.nan,
            )
        else:
            enc = OneHotEncoder(categories=cats, handle_unknown="ignore", sparse_output=False)  # type: ignore[arg-type]
        out.append((f"cat_{name}", enc, [name]))
    return out


def build_pipeline(spec: ModelSpec) -> Pipeline:
    """Preprocessing plus estimator, as one sklearn Pipeline that MLflow logs and reloads whole."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    est = spec.training.estimator
    lightgbm = est.kind == "lightgbm"
    if lightgbm:
        from lightgbm import LGBMClassifier, LGBMRegressor

        num_enc: object = "passthrough"
        params = {"random_state": spec.training.seed, "n_jobs": 1, "verbose": -1, **est.params}
        model: object = (LGBMRegressor if spec.task == "regression" else LGBMClassifier)(**params)
    elif est.kind == "river":
        from evergreen.online import RiverClassifier

        num_enc = SimpleImputer(strategy="median")
        model = RiverClassifier(est.class_path or "", dict(est.params), spec.training.seed)
    else:
        num_enc = SimpleImputer(strategy="median")
        cls = _import(est.class_path or "")
        params = dict(est.params)
        if "random_state" in cls().get_params():
            params.setdefault("random_state", spec.training.seed)
        model = cls(**params)
    pre = ColumnTransformer(
        [("num", num_enc, spec.numeric), *_category_encoders(spec, lightgbm)],
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    return Pipeline([("prep", pre), ("model", model)])


def fit(spec: ModelSpec, train: pd.DataFrame, weights: np.ndarray | None = None) -> tuple[Pipeline, float]:
    """Fit the spec's pipeline; returns it with the fit seconds.

    The pipeline remembers its task type and class count (`evergreen_task`, `evergreen_n_classes`), so
    predict_scores gives every class a column even when the training rows lacked one.
    """
    pipe = build_pipeline(spec)
    kwargs: dict[str, object] = {}
    if weights is not None:
        kwargs["model__sample_weight"] = weights
    if spec.training.estimator.kind == "lightgbm" and spec.categorical:
        kwargs["model__categorical_feature"] = spec.categorical
    y = labels(train, spec)
    if spec.task == "regression":
        if not np.isfinite(y).all():
            raise ValueError(f"the target {spec.data.target!r} holds values that are not numbers")
    elif len(np.unique(y)) < 2:
        raise ValueError("the training rows hold a single class; cannot train a classifier")
    start = time.perf_counter()
    if spec.training.engine.uses_dask(len(train)):
        # training.engine: lightgbm.dask on a Dask cluster. The cluster is an outside system, so its
        # wiring lives in adapters/; the booster comes back into this same Pipeline (docs/scale.md).
        from adapters.dask_engine import fit_lightgbm_dask

        fit_lightgbm_dask(
            spec.training.engine,
            pipe,
            train[spec.feature_names],
            y,
            task=spec.task,
            sample_weight=weights,
            categorical=spec.categorical or None,
        )
    else:
        pipe.fit(train[spec.feature_names], y, **kwargs)
    seconds = time.perf_counter() - start
    pipe.evergreen_task = spec.task  # type: ignore[attr-defined]
    pipe.evergreen_n_classes = len(spec.class_labels) if spec.task == "multiclass" else 2  # type: ignore[attr-defined]
    pipe.evergreen_labels = output_labels(spec)  # type: ignore[attr-defined]
    return pipe, seconds


def output_labels(spec: ModelSpec) -> list[str]:
    """The class labels as pyfunc's column names, in class-index order (binary: negative, positive)."""
    if spec.task == "binary":
        neg, pos = spec.class_labels
        return [f"not {pos}" if neg is None else str(neg), str(pos)]
    return [str(x) for x in spec.class_labels]


def predict_scores(model: Pipeline, frame: pd.DataFrame, features: list[str] | None = None) -> np.ndarray:
    """Scores in the form evergreen.metrics expects for the model's task type.

    binary: positive-class probabilities (n,); multiclass: probabilities (n, K), one column per class
    index; regression: predictions (n,). `features` defaults to what the model was fitted on.
    Pipelines from before task types (no `evergreen_task`) are binary classifiers.
    """
    cols = features if features is not None else list(model.feature_names_in_)
    task = getattr(model, "evergreen_task", "binary")
    if task == "regression":
        return np.asarray(model.predict(frame[cols]), dtype=float)
    proba = np.asarray(model.predict_proba(frame[cols]), dtype=float)
    if task == "binary":
        return proba[:, 1]
    out = np.zeros((len(frame), int(model.evergreen_n_classes)))
    out[:, np.asarray(model.classes_, dtype=np.int64)] = proba  # classes absent in training score 0
    return out


def batch_latency_p95_ms(model: Pipeline, frame: pd.DataFrame, batch_rows: int, repeats: int = 20) -> float:
    """p95 wall time in ms to score one batch of `batch_rows` rows (rows repeat if the frame is smaller)."""
    if frame.empty:
        return float("nan")
    reps = -(-batch_rows // len(frame))
    batch = (
        pd.concat([frame] * reps, ignore_index=True).iloc[:batch_rows]
        if reps > 1
        else frame.iloc[:batch_rows]
    )
    times = []
    predict_scores(model, batch)  # warm-up
    for _ in range(repeats):
        start = time.perf_counter()
        predict_scores(model, batch)
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 95))
