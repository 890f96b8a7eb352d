from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from evergreen.gate import decide, to_markdown
from evergreen.metrics import metric_value, paired_bootstrap, resampled_metric
from evergreen.spec import Gate


@pytest.fixture
def scored():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    base = np.clip(y * 0.3 + rng.normal(0.35, 0.25, 400), 0, 1)
    return y, base


@pytest.mark.parametrize("name", ["roc_auc", "accuracy", "logloss"])
def test_vectorised_metric_matches_sklearn(name, scored):
    y, s = scored
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(y), size=(5, len(y)))
    got = resampled_metric(name, y, s, idx)
    ref = {
        "roc_auc": lambda a, b: roc_auc_score(a, b),
        "accuracy": lambda a, b: accuracy_score(a, b >= 0.5),
        "logloss": lambda a, b: log_loss(a, b, labels=[0, 1]),
    }[name]
    for row, value in zip(idx, got, strict=True):
        assert value == pytest.approx(ref(y[row], s[row]), rel=1e-9)


def test_noise_only_improvement_is_not_promoted_with_superiority(scored):
    """A challenger equal to the champion plus tiny noise must not pass when superiority is required."""
    y, champ = scored
    chal = np.clip(champ + np.random.default_rng(7).normal(0, 0.01, len(y)), 0, 1)
    gate = Gate(floor=0.6, tolerance=0.0, require_superiority=True, seed=3, latency_p95_ms=None)
    d = decide(gate, "roc_auc", y, chal, champ, champion_version="1")
    assert not d.passed
    assert d.ci_low is not None and d.ci_low <= 0 <= d.ci_high
    assert "superiority" in d.summary
    # The same noise passes non-inferiority with a small tolerance: the gate models noise, not luck.
    d2 = decide(
        gate.model_copy(update={"require_superiority": False, "tolerance": 0.02}), "roc_auc", y, chal, champ
    )
    assert d2.passed


def test_clearly_better_challenger_is_promoted(scored):
    y, champ = scored
    chal = np.clip(y * 0.6 + np.random.default_rng(2).normal(0.2, 0.15, len(y)), 0, 1)
    d = decide(Gate(floor=0.6, require_superiority=True), "roc_auc", y, chal, champ)
    assert d.passed and d.ci_low > 0


def test_bootstrap_is_deterministic_by_seed(scored):
    y, s = scored
    other = np.clip(s + 0.05 * np.random.default_rng(5).normal(size=len(y)), 0, 1)
    a = paired_bootstrap("roc_auc", y, s, other, seed=11)
    b = paired_bootstrap("roc_auc", y, s, other, seed=11)
    c = paired_bootstrap("roc_auc", y, s, other, seed=12)
    assert a == b and a != c


def test_floor_first_model_and_latency(scored):
    y, s = scored
    assert decide(Gate(floor=0.99), "roc_auc", y, s).passed is False
    first = decide(Gate(floor=0.6), "roc_auc", y, s)
    assert first.passed and first.champion is None and "no champion" in first.summary
    slow = decide(Gate(floor=0.6, latency_p95_ms=10), "roc_auc", y, s, latency_p95_ms=50.0)
    assert not slow.passed and "over budget" in slow.summary


def test_logloss_floor_is_an_upper_bound(scored):
    y, s = scored
    ll = metric_value("logloss", y, s)
    assert decide(Gate(floor=ll + 0.01, latency_p95_ms=None), "logloss", y, s).passed
    assert not decide(Gate(floor=ll - 0.01, latency_p95_ms=None), "logloss", y, s).passed


def test_markdown_report(scored):
    y, s = scored
    md = to_markdown(decide(Gate(floor=0.6), "roc_auc", y, s, s, champion_version="3"))
    assert "champion v3" in md and "95% CI" in md
