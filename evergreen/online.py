"""Online learners (issue 12): a river classifier behind scikit-learn's fit / partial_fit / predict_proba.

`RiverClassifier` is the `model` step of the usual Pipeline when `training.estimator.kind` is `river`, so
the gate, the registry, the sklearn flavour and the pyfunc wrapper treat it like any other estimator.

- `fit` starts a fresh river model and learns the rows one at a time, in time order (river's own way;
  `learn_many` exists only for a few linear models and would change results between kinds);
- `partial_fit` continues the same model on new rows: the incremental update of an online retrain;
- linear models (`river.linear_model.*`) learn behind `river.preprocessing.StandardScaler`, because SGD
  on raw feature scales diverges.

Sample weights (window `decay`) are ignored: river learners weigh rows by arrival order themselves.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import pickle
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin


def resolve_river_class(path: str) -> type:
    """The river classifier class at `path`; ValueError naming the problem otherwise."""
    from river import base as river_base

    module, _, name = path.rpartition(".")
    if not module.startswith("river.") or not name:
        raise ValueError(f"class_path {path!r}: expected river.<module>.<Classifier>")
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"class_path: cannot import {path!r}: {exc}") from None
    # Checked on the class itself: nothing else is instantiated or called.
    if not isinstance(obj, type) or not issubclass(obj, river_base.Classifier):
        raise ValueError(f"class_path {path!r} is not a river classifier")
    return obj


def build_river(path: str, params: dict[str, Any], seed: int | None = None) -> Any:
    """A fresh river model: the class with `params` (plus `seed` if it takes one), scaled if linear."""
    from river import preprocessing

    cls = resolve_river_class(path)
    kwargs = dict(params)
    if seed is not None and "seed" in inspect.signature(cls).parameters:
        kwargs.setdefault("seed", seed)
    try:
        model = cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"params for {path}: {' '.join(str(exc).split())}") from None
    if path.startswith("river.linear_model."):
        return preprocessing.StandardScaler() | model
    return model


def _records(X: Any) -> list[dict[str, float]]:
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
    frame = frame.astype(float)
    cols = [str(c) for c in frame.columns]
    # NaN would poison running statistics; river treats a missing key as "feature absent".
    return [
        {c: v for c, v in zip(cols, row, strict=True) if v == v}
        for row in frame.itertuples(index=False, name=None)
    ]


class RiverClassifier(ClassifierMixin, BaseEstimator):
    """A river classifier with scikit-learn's estimator API (picklable, clonable)."""

    def __init__(
        self,
        class_path: str = "river.tree.HoeffdingAdaptiveTreeClassifier",
        params: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> None:
        self.class_path = class_path
        self.params = params
        self.seed = seed

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> RiverClassifier:
        """Start a fresh model and learn every row in order."""
        self.model_ = build_river(self.class_path, self.params or {}, self.seed)
        self.classes_ = np.array([], dtype=np.int64)
        self.n_learned_ = 0
        return self.partial_fit(X, y)

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> RiverClassifier:
        """Continue the current model on more rows (fit first if it has never learned)."""
        if not hasattr(self, "model_"):
            return self.fit(X, y)
        labels = np.asarray(y).astype(np.int64)
        self.classes_ = np.union1d(self.classes_, np.unique(labels))
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        for x, target in zip(_records(X), labels.tolist(), strict=True):
            self.model_.learn_one(x, target)
        self.n_learned_ += len(labels)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities per row, one column per class in `classes_` order (rows sum to 1)."""
        rows = _records(X)
        out = np.zeros((len(rows), len(self.classes_)))
        for i, x in enumerate(rows):
            probs = self.model_.predict_proba_one(x)
            # A binary river model answers {False: p, True: q}; True == 1 and hashes alike, so .get(1) works.
            out[i] = [float(probs.get(int(c), 0.0)) for c in self.classes_]
        total = out.sum(axis=1, keepdims=True)
        uniform = np.full_like(out, 1.0 / max(len(self.classes_), 1))
        return np.where(total > 0, out / np.where(total > 0, total, 1.0), uniform)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    # MLflow saves sklearn models with skops, which cannot walk river's compiled (Rust) drift detectors.
    # The river model therefore travels as pickle bytes inside the skops file: trusting this class's
    # type (adapters/mlflow_registry._trusted_types) trusts that pickle, which Evergreen itself wrote.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        if "model_" in state:
            state["model_"] = pickle.dumps(state["model_"])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        if isinstance(state.get("model_"), bytes):
            state["model_"] = pickle.loads(state["model_"])  # noqa: S301  written by __getstate__ above
        super().__setstate__(state)


def continue_pipeline(pipeline: Any, frame: pd.DataFrame, y: np.ndarray, features: list[str]) -> Any:
    """A copy of a fitted Pipeline whose river model has also learned `frame` (the original is unchanged).

    The fitted preprocessing is kept as it is, so the model keeps seeing the encodings it learned on.
    """
    model = pipeline.named_steps.get("model")
    if not isinstance(model, RiverClassifier):
        raise ValueError("training.online: the champion is not a river model; cannot continue it")
    new = copy.deepcopy(pipeline)
    new.named_steps["model"].partial_fit(new.named_steps["prep"].transform(frame[features]), y)
    return new
