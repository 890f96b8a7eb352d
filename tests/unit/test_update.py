"""Warm-start updates: tree counts, base trees kept, refit after K, drift forces a refit."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from evergreen.spec_update import Update
from evergreen.update import choose_mode, lineage_tags, update_fit


def _data(seed: int, n: int = 400) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    return frame, (frame["a"] + 0.3 * rng.normal(size=n) > 0).astype(int).to_numpy()


def _champion() -> Pipeline:
    frame, y = _data(0)
    prep = ColumnTransformer([("num", FunctionTransformer(), ["a", "b"])]).set_output(transform="pandas")
    pipe = Pipeline([("prep", prep), ("model", LGBMClassifier(n_estimators=30, verbose=-1))])
    return pipe.fit(frame, y)


def test_update_adds_exactly_trees_and_keeps_base() -> None:
    champ = _champion()
    base_trees = champ.named_steps["model"].booster_.num_trees()
    frame, y = _data(1)
    new, seconds = update_fit(champ, frame, y, ["a", "b"], trees=10)
    assert new.named_steps["model"].booster_.num_trees() == base_trees + 10
    assert champ.named_steps["model"].booster_.num_trees() == base_trees
    assert not np.allclose(new.predict_proba(frame), champ.predict_proba(frame))
    assert seconds >= 0


def _wrapper_update(
    champ: Pipeline, frame: pd.DataFrame, y: np.ndarray, trees: int, **params: object
) -> np.ndarray:
    """The same update through the sklearn wrapper's own `fit(init_model=...)`: the reference result."""
    from sklearn.base import clone

    base = champ.named_steps["model"]
    model = clone(base).set_params(n_estimators=trees, **params)
    model.fit(champ.named_steps["prep"].transform(frame), y, init_model=base.booster_)
    return model.predict_proba(champ.named_steps["prep"].transform(frame))


@pytest.mark.parametrize("labels", [None, np.array(["DOWN", "UP"]), np.array(["a", "b", "c"])])
def test_update_equals_the_sklearn_wrappers_init_model_fit(labels: np.ndarray | None) -> None:
    frame, y = _data(0)
    if labels is not None:
        y = labels[(frame["b"].rank(pct=True).to_numpy() * len(labels)).astype(int).clip(0, len(labels) - 1)]
    prep = ColumnTransformer([("num", FunctionTransformer(), ["a", "b"])]).set_output(transform="pandas")
    champ = Pipeline([("prep", prep), ("model", LGBMClassifier(n_estimators=30, verbose=-1))]).fit(frame, y)
    new_frame, _ = _data(1)
    new_y = y[::-1].copy()
    new, _ = update_fit(champ, new_frame, new_y, ["a", "b"], trees=7, learning_rate=0.03)
    expected = _wrapper_update(champ, new_frame, new_y, 7, learning_rate=0.03)
    np.testing.assert_allclose(new.predict_proba(new_frame), expected, rtol=0, atol=1e-12)
    assert list(new.classes_) == list(champ.classes_)
    again = pickle.loads(pickle.dumps(new))
    np.testing.assert_allclose(again.predict_proba(new_frame), expected, rtol=0, atol=1e-12)


def test_update_rejects_labels_the_champion_never_had() -> None:
    champ = _champion()
    frame, y = _data(1)
    with pytest.raises(ValueError, match=r"labels \[2\] are not among the champion's classes"):
        update_fit(champ, frame, np.where(y == 1, 2, y), ["a", "b"], trees=3)


def test_refit_after_k_and_on_drift() -> None:
    spec = Update(trees=10, window="4W", refit_every=2)
    assert choose_mode(spec, None) == "full"
    assert choose_mode(None, {"evergreen.update_count": "0"}) == "full"
    tags = lineage_tags("full", None, None)
    assert choose_mode(spec, tags) == "update"
    tags = lineage_tags("update", tags, "1")
    assert tags["evergreen.base_version"] == "1" and tags["evergreen.update_count"] == "1"
    assert choose_mode(spec, tags) == "update"
    assert choose_mode(spec, tags, reason="drift") == "full"
    tags = lineage_tags("update", tags, "2")
    assert choose_mode(spec, tags) == "full"


def test_update_with_sklearn_estimator_is_a_spec_error() -> None:
    import pytest
    from pydantic import ValidationError

    from evergreen.spec import Training

    with pytest.raises(ValidationError, match="training.update needs"):
        Training.model_validate(
            {
                "estimator": {"kind": "sklearn", "class_path": "sklearn.linear_model.LogisticRegression"},
                "update": {},
            }
        )
