"""Warm-start updates: tree counts, base trees kept, refit after K, drift forces a refit."""

from __future__ import annotations

import numpy as np
import pandas as pd
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
