"""Multiclass and regression metrics through the gate, the performance trigger, drift of the prediction,
the monitor and the backtest ranking; lower-is-better metrics judged the right way round (issue 10)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, log_loss, mean_absolute_error, r2_score, root_mean_squared_error

from evergreen import backtest as bt
from evergreen import gate, monitoring, training
from evergreen.drift import build_profile
from evergreen.metrics import metric_value, paired_bootstrap, resample_chunks, resampled_metric
from evergreen.performance import evaluate_trigger, measure_performance
from evergreen.spec import Gate, PerformanceTrigger, parse_spec
from tests.unit.test_spec_matrix import CLASSES, spec_dict, synth_frame

RNG = np.random.default_rng(7)


def _multiclass(n: int = 300, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    y = RNG.integers(0, k, n)
    logits = RNG.normal(size=(n, k))
    logits[np.arange(n), y] += 1.0
    p = np.exp(logits)
    return y, p / p.sum(axis=1, keepdims=True)


def _regression(n: int = 300, noise: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    y = RNG.normal(10, 3, n)
    return y, y + RNG.normal(0, noise, n)


@pytest.mark.parametrize("name", ["accuracy", "macro_f1", "logloss"])
def test_multiclass_resampled_metric_equals_sklearn_on_each_resample(name):
    y, p = _multiclass(k=5)
    y[y == 4] = 0  # class 4 never occurs: macro-F1 leaves it out where neither labels nor predictions have it
    idx = next(resample_chunks(len(y), 40, seed=1))
    got = resampled_metric(name, y, p, idx)
    want = [metric_value(name, y[i], p[i]) for i in idx]
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_point_metrics_are_sklearn():
    y, p = _multiclass()
    assert metric_value("macro_f1", y, p) == pytest.approx(f1_score(y, p.argmax(1), average="macro"))
    assert metric_value("logloss", y, p) == pytest.approx(log_loss(y, p, labels=range(4)))
    yr, pr = _regression()
    assert metric_value("rmse", yr, pr) == pytest.approx(root_mean_squared_error(yr, pr))
    assert metric_value("mae", yr, pr) == pytest.approx(mean_absolute_error(yr, pr))
    assert metric_value("r2", yr, pr) == pytest.approx(r2_score(yr, pr))
    assert np.isnan(metric_value("r2", np.ones(5), np.arange(5.0)))  # constant target: undefined


@pytest.mark.parametrize("name", ["rmse", "mae", "r2"])
def test_regression_resampled_metric_equals_sklearn_on_each_resample(name):
    y, p = _regression()
    idx = next(resample_chunks(len(y), 40, seed=2))
    np.testing.assert_allclose(
        resampled_metric(name, y, p, idx), [metric_value(name, y[i], p[i]) for i in idx], rtol=1e-10
    )


@pytest.mark.parametrize("name", ["rmse", "mae", "r2"])
def test_paired_bootstrap_is_oriented_so_positive_means_better(name):
    y, good = _regression(noise=0.5)
    bad = y + RNG.normal(0, 2.0, len(y))
    assert paired_bootstrap(name, y, good, bad, n_resamples=200).low > 0
    assert paired_bootstrap(name, y, bad, good, n_resamples=200).high < 0


def test_gate_floor_is_a_ceiling_for_error_metrics():
    y, p = _regression(noise=1.0)
    rmse = metric_value("rmse", y, p)
    assert gate.decide(Gate(floor=rmse + 0.2, latency_p95_ms=None), "rmse", y, p).passed
    failed = gate.decide(Gate(floor=rmse - 0.2, latency_p95_ms=None), "rmse", y, p)
    assert not failed.passed and f"> floor {rmse - 0.2:.4f}" in failed.summary
    # A clearly worse challenger fails non-inferiority against the champion.
    worse = y + RNG.normal(0, 3.0, len(y))
    verdict = gate.decide(Gate(latency_p95_ms=None, n_bootstrap=200), "mae", y, worse, p)
    assert not verdict.passed and verdict.ci_high is not None and verdict.ci_high < 0


def test_gate_multiclass_prefers_the_better_model():
    y, p = _multiclass()
    noise = RNG.dirichlet(np.ones(4), len(y))
    verdict = gate.decide(Gate(latency_p95_ms=None, n_bootstrap=200), "macro_f1", y, p, noise)
    assert verdict.passed and verdict.ci_low is not None and verdict.ci_low > 0


def test_performance_ceiling_for_rmse_and_trigger():
    y, p = _regression(noise=2.0)
    trig = PerformanceTrigger(consecutive=2, floor=1.0)
    reports = [measure_performance("rmse", y, p, reference=1.0, floor=1.0, n_resamples=200) for _ in range(2)]
    r = reports[0]
    assert not r.higher_is_better and r.below_floor and r.optimistic == r.ci_low and r.ci_low > 1.0
    assert r.n_positive is None and r.drop is not None and r.drop > 0  # worse than the reference
    assert evaluate_trigger(reports, trig).degraded
    fine = measure_performance("rmse", y, y + RNG.normal(0, 0.5, len(y)), reference=1.0, floor=1.0)
    assert not fine.below_floor and not evaluate_trigger([fine, fine], trig).degraded


def test_performance_multiclass_accuracy_uses_wilson_on_argmax():
    y, p = _multiclass()
    r = measure_performance("accuracy", y, p, reference=None, floor=0.99)
    assert r.method == "wilson" and r.value == pytest.approx((p.argmax(1) == y).mean()) and r.below_floor


def test_multiclass_labels_and_scores_keep_every_class():
    spec = parse_spec(spec_dict("multiclass", estimator="sklearn"))
    frame = synth_frame("multiclass", weeks=2)
    assert list(training.labels(frame.head(3).assign(y=["high", "low", "mid"]), spec)) == [2, 0, 1]
    two = frame[frame["y"] != "high"]  # the training rows lack a class
    model, _ = training.fit(spec, two)
    scores = training.predict_scores(model, frame.head(10))
    assert scores.shape == (10, len(CLASSES)) and (scores[:, 2] == 0).all()
    assert model.evergreen_labels == CLASSES


def test_prediction_drift_per_task_type():
    # multiclass: the predicted-class distribution; regression: predictions scaled to the reference range
    y, p = _multiclass(k=3)
    prof = build_profile(pd.DataFrame({"x": y}), ["x"], [], scores=p, task="multiclass")
    assert prof.score_kind == "predicted_class" and prof.n_classes == 3
    assert sum(1 for c in prof.score_histogram or [] if c) == len(np.unique(p.argmax(1)))
    yr, pr = _regression()
    prof = build_profile(pd.DataFrame({"x": yr}), ["x"], [], labels=yr, scores=pr, task="regression")
    assert prof.score_kind == "prediction" and prof.score_range == [pr.min(), pr.max()]
    assert prof.label_balance is None
    pts = prof.score_points(pr)
    assert pts.min() == 0 and pts.max() == 1


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_monitor_measures_prediction_drift_and_performance(task):
    spec = parse_spec(spec_dict(task, estimator="sklearn"))
    frame = synth_frame(task, weeks=3)
    train, batch = frame.iloc[:336], frame.iloc[-168:]
    model, _ = training.fit(spec, train)
    ref_scores = training.predict_scores(model, train)
    prof = build_profile(
        train,
        spec.numeric,
        spec.categorical,
        labels=training.labels(train, spec),
        scores=ref_scores,
        task=task,
    )

    def assess(rows: pd.DataFrame):
        return monitoring.assess(
            spec,
            prof,
            rows,
            scores=training.predict_scores(model, rows),
            prior=monitoring.StreakState(),
            batch_key="b",
            context={},
        )

    same = assess(batch)
    assert same.drift.score is not None and not same.drift.score.drifted
    assert same.performance is not None and same.performance.report.metric == spec.metric
    shifted = assess(batch.assign(x1=batch["x1"] + 3.0))  # moves every prediction
    assert shifted.drift.score is not None and shifted.drift.score.drifted


def test_backtest_ranks_error_metrics_lowest_first_and_refuses_accuracy_for_regression():
    spec = parse_spec(spec_dict("regression", estimator="sklearn"))
    frame = synth_frame("regression", weeks=7)
    frame.loc[frame.index >= 5 * 168, "y"] += 8.0  # an abrupt shift: retraining pays off
    pols = bt.parse_policies(
        [
            {"name": "never", "trigger": {"schedule": {"every": 100}}},
            {"name": "every", "trigger": {"schedule": {"every": 1}}, "gate": False},
        ]
    ).policies
    report = bt.run_backtest(frame, spec, pols, batch_period="7D", warmup=4)
    by = {p.name: p for p in report.policies}
    assert by["every"].mean_metric < by["never"].mean_metric and report.best == "every"
    assert "(lower is better)" in bt.to_markdown(report) and "mean accuracy" not in bt.to_markdown(report)
    with pytest.raises(ValueError, match="rank_by"):
        bt.run_backtest(frame, spec, pols, batch_period="7D", warmup=4, rank_by="accuracy")


def test_pyfunc_natural_output_names_every_class_and_returns_values_for_regression():
    from adapters.evergreen_pyfunc import NaturalOutput

    spec = parse_spec(spec_dict("multiclass", estimator="sklearn"))
    frame = synth_frame("multiclass", weeks=2)
    model, _ = training.fit(spec, frame[frame["y"] != "mid"])  # "mid" never seen in training
    out = NaturalOutput(model, "multiclass", model.evergreen_labels).predict(
        frame[spec.feature_names].head(5)
    )
    assert list(out.columns) == CLASSES and (out["mid"] == 0).all()
    np.testing.assert_allclose(out.to_numpy(), training.predict_scores(model, frame.head(5)))
    reg = parse_spec(spec_dict("regression", estimator="sklearn"))
    rframe = synth_frame("regression", weeks=1)
    rmodel, _ = training.fit(reg, rframe)
    values = NaturalOutput(rmodel, "regression", []).predict(rframe[reg.feature_names].head(5))
    assert values.shape == (5,) and values.dtype == float
