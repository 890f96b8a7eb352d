"""Checking a spec's estimator when the spec is loaded, not an hour later inside a retrain.

- `class_path` must import to a class that subclasses sklearn's BaseEstimator and is a classifier
  (a regressor for `task: regression`). Anything else (a function such as `subprocess.getoutput`, a
  regressor for a classification task) is refused without being called or instantiated.
- Parameters are checked by building the estimator and, for LightGBM (which validates only when it
  trains), fitting it on a tiny synthetic sample. Errors name the offending `params` key.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

_X = np.arange(40, dtype=float).reshape(20, 2)
_Y = {
    "binary": np.array([0, 1] * 10),
    "multiclass": np.array([0, 1, 2, 3] * 5),
    "regression": np.linspace(0.0, 1.0, 20),
}


def resolve_class(path: str, task: str = "binary") -> type:
    """The estimator class at `path` (module.ClassName), refused unless it fits the task.

    A classifier for binary and multiclass, a regressor for regression.
    """
    from sklearn.base import BaseEstimator

    module, _, name = path.rpartition(".")
    if not module or not name:
        raise ValueError(f"class_path {path!r}: expected module.ClassName")
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"class_path: cannot import {path!r}: {exc}") from None
    # Checked on the object itself: a function or any other callable is never called.
    if not isinstance(obj, type) or not issubclass(obj, BaseEstimator):
        raise ValueError(f"class_path {path!r} is not a scikit-learn estimator class")
    if task == "regression":
        if not _is_kind(obj, "regressor"):
            raise ValueError(f"class_path {path!r} is not a regressor (task 'regression' trains regressors)")
    elif not _is_kind(obj, "classifier"):
        raise ValueError(f"class_path {path!r} is not a classifier (task {task!r} trains classifiers)")
    return obj


def _is_kind(cls: type, kind: str) -> bool:
    from sklearn.base import ClassifierMixin, RegressorMixin, is_classifier, is_regressor

    mixin, check = (
        (ClassifierMixin, is_classifier) if kind == "classifier" else (RegressorMixin, is_regressor)
    )
    if issubclass(cls, mixin):
        return True
    try:  # newer sklearn reads the tags of an instance; a vetted estimator's __init__ only stores params
        return bool(check(cls()))
    except Exception:  # noqa: BLE001  no default constructor: not something Evergreen can build anyway
        return False


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _fit_lightgbm(params: dict[str, Any], task: str = "binary") -> None:
    from lightgbm import LGBMClassifier, LGBMRegressor

    trial = dict(params)
    n = trial.get("n_estimators")
    if isinstance(n, int) and not isinstance(n, bool) and n > 1:
        trial["n_estimators"] = 1  # the value is valid; one tree checks the rest just as well
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cls = LGBMRegressor if task == "regression" else LGBMClassifier
        cls(**{"verbose": -1, "n_jobs": 1, **trial}).fit(_X, _Y[task])


def _check_lightgbm(params: dict[str, Any], task: str = "binary") -> None:
    try:
        _fit_lightgbm(params, task)
    except Exception as exc:  # noqa: BLE001  LightGBM raises its own error types and TypeError/ValueError
        for key, value in params.items():  # name the key: retry each parameter on its own
            try:
                _fit_lightgbm({key: value}, task)
            except Exception as one:  # noqa: BLE001
                raise ValueError(
                    f"params.{key}={value!r} is invalid for LightGBM: {_one_line(one)}"
                ) from None
        raise ValueError(f"params are invalid for LightGBM: {_one_line(exc)}") from None


def _check_sklearn(path: str, params: dict[str, Any], task: str = "binary") -> None:
    cls = resolve_class(path, task)
    try:
        est = cls(**params)
    except TypeError as exc:
        raise ValueError(f"params for {path}: {_one_line(exc)}") from None
    # sklearn >= 1.2: the checks fit() would run (only for estimators that declare constraints)
    validate = getattr(est, "_validate_params", None)
    if callable(validate) and hasattr(est, "_parameter_constraints"):
        try:
            validate()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"params for {path}: {_one_line(exc)}") from None


def check_estimator(
    kind: str, class_path: str | None, params: dict[str, Any], *, task: str = "binary"
) -> None:
    """Raise ValueError naming the problem if the estimator cannot be built from the spec for `task`."""
    if kind == "lightgbm":
        _check_lightgbm(params, task)
    elif kind == "river":
        from evergreen.online import build_river

        if task == "regression":
            raise ValueError("kind river trains classifiers; task 'regression' is not supported")
        build_river(class_path or "", params)
    elif class_path:
        _check_sklearn(class_path, params, task)
