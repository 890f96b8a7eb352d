"""Generated specs across the documented options (issue 10), through the pure core on synthetic data.

Every generated spec must validate (GX), train, be judged by the gate and be backtested; every
refused spec must fail at load with a message naming the key. The matrix crosses task type x
estimator kind x window form (24 specs) and rotates the hold-out form, the categorical options
(with and without `categories`, `allow_unknown`) and numeric min/max through them, so each value
of each option meets every task type. tests/integration/test_task_types.py runs one spec per task
type through the real retrain flow.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
import pytest

from evergreen import backtest as bt
from evergreen import gate, training, validation
from evergreen.drift import build_profile
from evergreen.metrics import metric_value
from evergreen.spec import TASK_METRICS, ModelSpec, SpecError, parse_spec

TASKS = ("binary", "multiclass", "regression")
ESTIMATORS = ("lightgbm", "sklearn")
WINDOWS: tuple[dict[str, Any], ...] = (
    {"kind": "all"},
    {"kind": "rolling", "rows": 300},
    {"kind": "rolling", "period": "14D"},
    {"kind": "decay", "half_life": "7D"},
)
HOLDOUTS: tuple[dict[str, Any] | None, ...] = (None, {"period": "2D"}, {"rows": 100})
# (categories listed, allow_unknown)
CATEGORICALS = ((True, False), (False, False), (True, True), (False, True))
CLASSES = ["low", "mid", "high"]
SKLEARN = {
    "binary": "sklearn.linear_model.LogisticRegression",
    "multiclass": "sklearn.linear_model.LogisticRegression",
    "regression": "sklearn.linear_model.Ridge",
}


def synth_frame(task: str, *, weeks: int = 6, seed: int = 0, start: str = "2024-01-01") -> pd.DataFrame:
    """Hourly rows with two numeric features (x2 in [0, 10]), one categorical, and a learnable target."""
    rng = np.random.default_rng(seed)
    n = weeks * 7 * 24
    x1 = rng.normal(size=n)
    x2 = rng.uniform(0, 10, n)
    c = rng.choice(["a", "b", "c"], n)
    signal = x1 + 0.3 * x2 - 1.5 + (c == "b") * 1.0 + rng.normal(0, 0.5, n)
    if task == "binary":
        y: Any = np.where(signal > 0, "yes", "no")
    elif task == "multiclass":
        y = np.array(CLASSES)[np.digitize(signal, [-0.7, 0.7])]
    else:
        y = 2.0 * signal + 10.0
    return pd.DataFrame({"ts": pd.date_range(start, periods=n, freq="h"), "x1": x1, "x2": x2, "c": c, "y": y})


def spec_dict(
    task: str,
    *,
    name: str = "matrix",
    estimator: str = "lightgbm",
    window: dict[str, Any] | None = None,
    holdout: dict[str, Any] | None = None,
    categories: bool = True,
    allow_unknown: bool = False,
    bounds: bool = True,
    path: str | None = None,
) -> dict[str, Any]:
    """A spec for synth_frame(task), small and fast: few trees, a cheap gate, latency off."""
    data: dict[str, Any] = {"path": path or name, "target": "y", "time_column": "ts"}
    if task == "binary":
        data |= {"positive_label": "yes", "labels": ["yes", "no"]}
    elif task == "multiclass":
        data["labels"] = list(CLASSES)
    cat: dict[str, Any] = {"name": "c", "type": "categorical", "allow_unknown": allow_unknown}
    if categories:
        cat["categories"] = ["a", "b", "c"]
    x2: dict[str, Any] = {"name": "x2", "type": "numeric"}
    if bounds:
        x2 |= {"min": 0, "max": 10}
    est: dict[str, Any] = (
        {"kind": "lightgbm", "params": {"n_estimators": 10, "num_leaves": 7, "min_child_samples": 5}}
        if estimator == "lightgbm"
        else {"kind": "sklearn", "class_path": SKLEARN[task]}
    )
    tr: dict[str, Any] = {"window": window or {"kind": "all"}, "estimator": est, "min_train_rows": 100}
    if holdout is not None:
        tr["holdout"] = holdout
    return {
        "name": name,
        "task": task,
        "data": data,
        "features": [{"name": "x1", "type": "numeric"}, x2, cat],
        "training": tr,
        "gate": {"n_bootstrap": 100, "latency_p95_ms": None, "tolerance": 1.0, "min_holdout_rows": 20},
        "triggers": {"cooldown": None},
    }


def matrix() -> list[tuple[str, dict[str, Any]]]:
    """(id, spec dict): task x estimator x window, rotating hold-out, categorical and bounds options."""
    out = []
    for k, (task, est, win) in enumerate(itertools.product(TASKS, ESTIMATORS, WINDOWS)):
        hold = HOLDOUTS[k % len(HOLDOUTS)]
        cats, unknown = CATEGORICALS[(k // 2) % len(CATEGORICALS)]
        bounds = k % 2 == 0
        ident = (
            f"{task}-{est}-{'-'.join(str(v) for v in win.values())}-hold{'-'.join(map(str, (hold or {}).values())) or 'default'}"
            f"-{'cats' if cats else 'nocats'}{'-unknown' if unknown else ''}{'-bounds' if bounds else ''}"
        )
        raw = spec_dict(
            task,
            estimator=est,
            window=win,
            holdout=hold,
            categories=cats,
            allow_unknown=unknown,
            bounds=bounds,
        )
        out.append((ident, raw))
    return out


MATRIX = matrix()


def test_matrix_covers_every_option():
    """Each value of each option meets every task type at least once."""
    seen: dict[str, set[str]] = {t: set() for t in TASKS}
    for _, raw in MATRIX:
        tr, cat = raw["training"], raw["features"][2]
        seen[raw["task"]] |= {
            f"est:{tr['estimator']['kind']}",
            f"win:{sorted(tr['window'].items())}",
            f"hold:{sorted(tr.get('holdout', {}).items())}",
            f"cats:{'categories' in cat}",
            f"unknown:{cat['allow_unknown']}",
            f"bounds:{'min' in raw['features'][1]}",
        }
    for task, opts in seen.items():
        assert len([o for o in opts if o.startswith("est:")]) == 2, task
        assert len([o for o in opts if o.startswith("win:")]) == 4, task
        assert len([o for o in opts if o.startswith("hold:")]) == 3, task
        assert {
            "cats:True",
            "cats:False",
            "unknown:True",
            "unknown:False",
            "bounds:True",
            "bounds:False",
        } <= opts


@pytest.mark.parametrize(("ident", "raw"), MATRIX, ids=[i for i, _ in MATRIX])
def test_generated_spec_validates_trains_gates_and_backtests(ident: str, raw: dict[str, Any]) -> None:
    spec = parse_spec(raw, source=ident)
    frame = synth_frame(spec.task)
    # Ingest's and training's GX suites accept the data.
    assert validation.validate(frame.tail(168), spec).success
    assert validation.validate(frame, spec, training=True).success

    # Retrain: champion on the first weeks, challenger on all; the gate judges both on the hold-out.
    champion, _ = training.fit(spec, frame.iloc[: 3 * 168])
    sp = training.split(frame, spec)
    challenger, _ = training.fit(spec, sp.train, sp.weights)
    y = training.labels(sp.holdout, spec)
    chal, champ = (training.predict_scores(m, sp.holdout, spec.feature_names) for m in (challenger, champion))
    verdict = gate.decide(spec.gate, spec.metric, y, chal, champ)
    assert np.isfinite(verdict.challenger) and verdict.ci_low is not None and verdict.n_resamples > 0
    for m in TASK_METRICS[spec.task]:
        assert np.isfinite(metric_value(m, y, chal)), m
    _assert_natural_scores(spec, chal, len(sp.holdout))
    profile = build_profile(sp.train, spec.numeric, spec.categorical, scores=chal, task=spec.task)
    assert profile.score_histogram is not None and sum(profile.score_histogram) == len(chal)

    # Backtest: retrain every batch behind the spec's gate.
    report = bt.run_backtest(
        frame,
        spec,
        bt.parse_policies([{"name": "every", "trigger": {"schedule": {"every": 1}}}]).policies,
        batch_period="7D",
        warmup=4,
    )
    (policy,) = report.policies
    assert policy.retrains >= 1 and all(b.metric is not None for b in policy.batches)
    assert (policy.mean_accuracy is None) == (spec.task == "regression")
    assert f"mean {spec.metric}" in bt.to_markdown(report)


def _assert_natural_scores(spec: ModelSpec, scores: np.ndarray, n: int) -> None:
    if spec.task == "multiclass":
        assert scores.shape == (n, len(CLASSES))
        np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-6)
    elif spec.task == "binary":
        assert scores.shape == (n,) and ((scores >= 0) & (scores <= 1)).all()
    else:
        assert scores.shape == (n,) and scores.std() > 0


REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("binary-with-rmse", {"metric": "rmse"}, "metric"),
    ("regression-with-roc_auc", {"task": "regression", "metric": "roc_auc"}, "metric"),
    ("multiclass-with-roc_auc", {"task": "multiclass", "metric": "roc_auc"}, "metric"),
    ("unknown-task", {"task": "ranking"}, "task"),
    (
        "regression-positive-label",
        {"task": "regression", "data.positive_label": "yes"},
        "data.positive_label",
    ),
    ("regression-labels", {"task": "regression", "data.labels": ["a", "b"]}, "data.labels"),
    ("binary-no-positive-label", {"data.positive_label": None}, "data.positive_label"),
    ("binary-positive-not-in-labels", {"data.positive_label": "maybe"}, "data.positive_label"),
    ("multiclass-no-labels", {"task": "multiclass", "data.labels": None}, "data.labels"),
    ("multiclass-repeated-label", {"task": "multiclass", "data.labels": ["a", "a", "b"]}, "data.labels"),
    (
        "multiclass-positive-label",
        {"task": "multiclass", "data.positive_label": "low"},
        "data.positive_label",
    ),
    (
        "regression-classifier",
        {"task": "regression", "training.estimator": {"kind": "sklearn", "class_path": SKLEARN["binary"]}},
        "training.estimator",
    ),
    (
        "binary-regressor",
        {"training.estimator": {"kind": "sklearn", "class_path": SKLEARN["regression"]}},
        "training.estimator",
    ),
    ("sklearn-without-class-path", {"training.estimator": {"kind": "sklearn"}}, "training.estimator"),
    ("lightgbm-bad-param", {"training.estimator": {"params": {"num_leaves": 1}}}, "num_leaves"),
    ("holdout-both-forms", {"training.holdout": {"period": "7D", "rows": 10}}, "training.holdout"),
    ("holdout-bad-period", {"training.holdout": {"period": "soon"}}, "training.holdout.period"),
    ("rolling-without-size", {"training.window": {"kind": "rolling"}}, "training.window"),
    ("decay-without-half-life", {"training.window": {"kind": "decay"}}, "training.window"),
    ("all-with-rows", {"training.window": {"kind": "all", "rows": 5}}, "training.window"),
    ("accuracy-floor-above-1", {"gate.floor": 1.5}, "gate.floor"),
    ("rmse-floor-negative", {"task": "regression", "gate.floor": -1.0}, "gate.floor"),
    ("r2-floor-above-1", {"task": "regression", "metric": "r2", "gate.floor": 2.0}, "gate.floor"),
    (
        "performance-floor-negative-mae",
        {"task": "regression", "metric": "mae", "triggers.performance.floor": -0.5},
        "triggers.performance.floor",
    ),
    ("min-above-max", {"features.1": {"name": "x2", "type": "numeric", "min": 5, "max": 1}}, "features.1"),
    (
        "categorical-with-min",
        {"features.2": {"name": "c", "type": "categorical", "min": 0}},
        "features.2",
    ),
]


def _with(raw: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Apply dotted changes; `task` also drops the label keys the new task refuses, unless given."""
    task = changes.get("task")
    if task == "regression":
        raw["data"].pop("positive_label", None)
        raw["data"].pop("labels", None)
        raw["training"]["estimator"] = {"kind": "sklearn", "class_path": SKLEARN["regression"]}
    elif task == "multiclass":
        raw["data"].pop("positive_label", None)
        raw["data"]["labels"] = list(CLASSES)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node: Any = raw
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if isinstance(node, list):
            node[int(leaf)] = value
        else:
            node[leaf] = value
    return raw


@pytest.mark.parametrize(("ident", "changes", "key"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_spec_names_the_key(ident: str, changes: dict[str, Any], key: str) -> None:
    raw = _with(spec_dict("binary", name="refused"), changes)
    with pytest.raises(SpecError) as err:
        parse_spec(raw, source=ident)
    lines = str(err.value).splitlines()
    assert len(lines) == 2, str(err.value)  # "invalid model spec <source>:" + one line naming the key
    assert key in lines[1], str(err.value)


# ---- issue 10's two defects (regression tests) ----


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("allow_unknown", [False, True])
def test_categorical_without_categories_trains_and_scores_unknown(
    estimator: str, allow_unknown: bool
) -> None:
    """Was: OrdinalEncoder(categories=["auto"]) -> IndexError inside sklearn, every training crashed."""
    spec = parse_spec(spec_dict("binary", estimator=estimator, categories=False, allow_unknown=allow_unknown))
    frame = synth_frame("binary", weeks=2)
    model, _ = training.fit(spec, frame)
    batch = frame.tail(50).assign(c="never-seen")  # a category training never saw
    scores = training.predict_scores(model, batch)
    assert scores.shape == (50,) and np.isfinite(scores).all()
    # Without a category list there is nothing to reject at ingest, whatever allow_unknown says.
    assert validation.validate(batch, spec).success


def test_listed_categories_reject_unknown_unless_allowed() -> None:
    batch = synth_frame("binary", weeks=1).assign(c="zzz")
    assert not validation.validate(batch, parse_spec(spec_dict("binary"))).success
    assert validation.validate(batch, parse_spec(spec_dict("binary", allow_unknown=True))).success


def test_holdout_rows_alone_is_accepted() -> None:
    """Was: `holdout: {rows: 365}` refused with "give `period` or `rows`, not both" (default period stayed)."""
    spec = parse_spec(spec_dict("binary", holdout={"rows": 365}))
    assert (spec.training.holdout.rows, spec.training.holdout.period) == (365, None)
    sp = training.split(synth_frame("binary", weeks=3), spec)
    assert len(sp.holdout) == 365
    # The default hold-out stays a week, and survives a dump/parse round trip (overrides use one).
    plain = parse_spec(spec_dict("binary"))
    assert plain.training.holdout.period == "7D"
    assert plain.with_overrides({}).training.holdout == plain.training.holdout
    by_rows = plain.with_overrides({"training.holdout.rows": 365}).training.holdout
    assert (by_rows.rows, by_rows.period) == (365, None)
    assert spec.with_overrides({"training.holdout.period": "3D"}).training.holdout.rows is None


def test_task_defaults_its_metric() -> None:
    for task in TASKS:
        assert parse_spec(spec_dict(task)).metric == TASK_METRICS[task][0]


def test_cli_refuses_a_generated_spec_in_one_error_line(tmp_path):
    """What a user sees: `evergreen retrain` on a spec whose metric does not fit its task."""
    import os
    import subprocess
    import sys

    import yaml

    from tests.support.builders import ROOT

    raw = spec_dict("regression", name="refused-cli")
    raw["metric"] = "roc_auc"
    (tmp_path / "refused-cli.yaml").write_text(yaml.safe_dump(raw))
    env = {**os.environ, "EVERGREEN_MODELS_DIR": str(tmp_path), "EVERGREEN_HOME": str(tmp_path / "home")}
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "retrain", "refused-cli"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "metric 'roc_auc' does not fit task 'regression'" in errors[0]
