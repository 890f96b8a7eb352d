from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evergreen import training
from evergreen.metrics import metric_value
from evergreen.spec import Window


def test_holdout_is_most_recent_week_and_disjoint(elec2, elec2_spec):
    frame = elec2.iloc[: 336 * 12]
    elec2_spec = elec2_spec.with_overrides({"training.window": {"kind": "rolling", "period": "8W"}})
    sp = training.split(frame, elec2_spec)
    t = elec2_spec.data.time_column
    assert len(sp.holdout) == 336
    assert sp.train[t].max() < sp.holdout[t].min()
    assert sp.holdout[t].max() == frame[t].max()
    # rolling 8W window: 8 weeks of rows before the hold-out
    assert len(sp.train) == 336 * 8


def test_split_sorts_shuffled_input(elec2, elec2_spec):
    frame = elec2.iloc[: 336 * 12].sample(frac=1.0, random_state=0)
    sp = training.split(frame, elec2_spec)
    assert sp.holdout[elec2_spec.data.time_column].is_monotonic_increasing


def test_windows(elec2):
    pool = elec2.iloc[:1000]
    rows, w = training.apply_window(pool, Window(kind="rolling", rows=100), "timestamp")
    assert len(rows) == 100 and w is None and rows.index[-1] == 999
    allr, w = training.apply_window(pool, Window(kind="all"), "timestamp")
    assert len(allr) == 1000
    dec, w = training.apply_window(pool, Window(kind="decay", half_life="1D"), "timestamp")
    assert w is not None and w[-1] == pytest.approx(1.0)
    # 48 half-hours = one half-life earlier
    assert w[-1 - 48] == pytest.approx(0.5)


def test_too_few_rows_is_a_clear_error(elec2, elec2_spec):
    with pytest.raises(ValueError, match="min_train_rows"):
        training.split(elec2.iloc[:400], elec2_spec)


def test_lightgbm_beats_trivial_baseline(elec2, elec2_spec):
    """Model behaviour: on a known window the model clearly beats predicting the base rate."""
    sp = training.split(elec2.iloc[: 336 * 12], elec2_spec)
    model, secs = training.fit(elec2_spec, sp.train, sp.weights)
    y = training.labels(sp.holdout, elec2_spec)
    auc = metric_value("roc_auc", y, training.predict_scores(model, sp.holdout))
    base = metric_value("roc_auc", y, np.full(len(y), y.mean()))
    assert auc > 0.8 > base + 0.2
    assert secs > 0


def test_unknown_category_scores_without_crash(elec2, elec2_spec):
    sp = training.split(elec2.iloc[: 336 * 12], elec2_spec)
    model, _ = training.fit(elec2_spec, sp.train)
    odd = sp.holdout.copy()
    odd["day"] = 9
    s = training.predict_scores(model, odd)
    assert np.isfinite(s).all()


def test_sklearn_estimator(elec2, elec2_spec):
    spec = elec2_spec.with_overrides(
        {
            "training.estimator": {
                "kind": "sklearn",
                "class_path": "sklearn.linear_model.LogisticRegression",
                "params": {"max_iter": 500},
            }
        }
    )
    sp = training.split(elec2.iloc[: 336 * 12], spec)
    model, _ = training.fit(spec, sp.train)
    assert (
        metric_value("roc_auc", training.labels(sp.holdout, spec), training.predict_scores(model, sp.holdout))
        > 0.5
    )
    # An unimportable class_path is refused when the spec is built (issue 9 case 10), not at training.
    with pytest.raises(ValueError, match="cannot import"):
        elec2_spec.with_overrides(
            {"training.estimator": {"kind": "sklearn", "class_path": "sklearn.nope.Model"}}
        )


def test_single_class_training_is_rejected(elec2, elec2_spec):
    frame = elec2.iloc[: 336 * 12].copy()
    frame["class"] = "UP"
    with pytest.raises(ValueError, match="single class"):
        sp = training.split(frame, elec2_spec)
        training.fit(elec2_spec, sp.train)


def test_latency_measure_positive(elec2, elec2_spec):
    sp = training.split(elec2.iloc[: 336 * 12], elec2_spec)
    model, _ = training.fit(elec2_spec, sp.train)
    assert training.batch_latency_p95_ms(model, sp.holdout[elec2_spec.feature_names], 1000) > 0
    assert np.isnan(training.batch_latency_p95_ms(model, pd.DataFrame(), 10))


def test_refit_rows_include_the_holdout(elec2, elec2_spec):
    frame = elec2.iloc[: 336 * 12]
    sp = training.split(frame, elec2_spec)
    rows, weights = training.refit_rows(frame, elec2_spec)
    assert rows["timestamp"].max() == sp.holdout["timestamp"].max()
    assert len(rows) == len(sp.train) + len(sp.holdout)
    if elec2_spec.training.window.kind == "decay":
        assert weights is not None and weights[-1] == pytest.approx(1.0)
