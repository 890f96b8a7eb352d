"""Online learners (evergreen.online): river behind the sklearn API, in the spec, and continued on new rows."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
import skops.io

from evergreen import online, training
from evergreen.spec import ModelSpec, SpecError
from tests.unit.test_spec_matrix import spec_dict, synth_frame

PATHS = [
    "river.linear_model.LogisticRegression",
    "river.tree.HoeffdingAdaptiveTreeClassifier",
    "river.forest.ARFClassifier",
]


def river_spec(path: str, task: str = "binary", **training_keys: Any) -> ModelSpec:
    raw = spec_dict(task)
    params = {"n_models": 3} if path.endswith("ARFClassifier") else {}
    raw["training"]["estimator"] = {"kind": "river", "class_path": path, "params": params}
    raw["training"].update(training_keys)
    return ModelSpec.model_validate(raw)


@pytest.mark.parametrize("path", PATHS)
def test_river_pipeline_learns_and_pickles(path: str) -> None:
    spec = river_spec(path)
    frame = synth_frame("binary", weeks=3)
    pipe, _ = training.fit(spec, frame.iloc[:300])
    scores = training.predict_scores(pipe, frame.iloc[300:], spec.feature_names)
    y = training.labels(frame.iloc[300:], spec)
    assert scores.shape == (len(y),) and np.all((scores >= 0) & (scores <= 1))
    assert np.mean((scores > 0.5) == y) > 0.6  # learnable target: well above chance
    again = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(
        training.predict_scores(again, frame.iloc[300:]), training.predict_scores(pipe, frame.iloc[300:])
    )
    # MLflow's sklearn flavour saves with skops: the river model must survive that too.
    data = skops.io.dumps(pipe)
    again = skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
    np.testing.assert_array_equal(
        training.predict_scores(again, frame.iloc[300:]), training.predict_scores(pipe, frame.iloc[300:])
    )


def test_continue_pipeline_is_partial_fit_and_leaves_the_base_alone() -> None:
    spec = river_spec(PATHS[1])
    frame = synth_frame("binary", weeks=3)
    base, _ = training.fit(spec, frame.iloc[:200])
    before = training.predict_scores(base, frame.iloc[400:])
    new = online.continue_pipeline(
        base, frame.iloc[200:400], training.labels(frame.iloc[200:400], spec), spec.feature_names
    )
    assert new.named_steps["model"].n_learned_ == 400
    assert base.named_steps["model"].n_learned_ == 200
    np.testing.assert_array_equal(training.predict_scores(base, frame.iloc[400:]), before)
    # Continuing on rows 200-400 equals learning 0-400 in one go (same prep, same row order).
    whole, _ = training.fit(spec, frame.iloc[:400])
    np.testing.assert_allclose(
        training.predict_scores(whole, frame.iloc[400:]), training.predict_scores(new, frame.iloc[400:])
    )


def test_multiclass_with_a_tree() -> None:
    spec = river_spec(PATHS[1], task="multiclass")
    frame = synth_frame("multiclass", weeks=3)
    pipe, _ = training.fit(spec, frame.iloc[:300])
    scores = training.predict_scores(pipe, frame.iloc[300:], spec.feature_names)
    assert scores.shape == (len(frame) - 300, 3)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0)


def test_online_defaults_on_for_river_and_needs_river() -> None:
    assert river_spec(PATHS[0]).training.is_online
    assert not river_spec(PATHS[0], online=False).training.is_online
    raw = spec_dict("binary")
    raw["training"]["online"] = True
    with pytest.raises((SpecError, ValueError), match="training.online needs"):
        ModelSpec.model_validate(raw)


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("sklearn.linear_model.LogisticRegression", {}, "expected river"),
        ("river.preprocessing.StandardScaler", {}, "not a river classifier"),
        ("river.tree.NoSuchTree", {}, "cannot import"),
        ("river.tree.HoeffdingTreeClassifier", {"bogus": 1}, "bogus"),
    ],
)
def test_bad_river_estimators_are_refused_at_load(path: str, params: dict[str, Any], message: str) -> None:
    raw = spec_dict("binary")
    raw["training"]["estimator"] = {"kind": "river", "class_path": path, "params": params}
    with pytest.raises((SpecError, ValueError), match=message):
        ModelSpec.model_validate(raw)


def test_continue_refuses_a_non_river_champion() -> None:
    spec = ModelSpec.model_validate(spec_dict("binary"))
    frame = synth_frame("binary", weeks=2)
    pipe, _ = training.fit(spec, frame)
    with pytest.raises(ValueError, match="not a river model"):
        online.continue_pipeline(pipe, frame, training.labels(frame, spec), spec.feature_names)


def test_refit_online_learns_the_holdout_after_the_challenger_rows() -> None:
    from tasks.online import refit_online
    from tasks.training import Trained

    spec = river_spec(PATHS[0])
    frame = synth_frame("binary", weeks=3)
    base, _ = training.fit(spec, frame.iloc[:200])
    rows = frame.iloc[200:400]
    chal = online.continue_pipeline(base, rows, training.labels(rows, spec), spec.feature_names)
    out = refit_online(spec, frame, Trained(pipeline=chal, rows=rows, seconds=1.0, base=base))
    assert out.refit and len(out.rows) == len(frame) - 200
    assert out.pipeline.named_steps["model"].n_learned_ == len(frame)
    assert chal.named_steps["model"].n_learned_ == 400  # the challenger itself is left as it was
