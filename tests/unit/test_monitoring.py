"""The monitor's pure assessment: drift verdict, performance streak, event payloads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evergreen.drift import ReferenceProfile, build_profile
from evergreen.events import Event
from evergreen.monitoring import MonitorOutcome, StreakState, assess, markdown_summary
from evergreen.performance import evaluate_trigger
from evergreen.spec import ModelSpec, parse_spec
from tests.support.builders import SYNTH_ROWS, synthetic_spec_dict, synthetic_stream

CONTEXT = {"source": "test", "n_rows": SYNTH_ROWS, "champion_version": "3"}


def make_spec(**triggers: dict) -> ModelSpec:
    raw = synthetic_spec_dict()
    raw["triggers"] = {**raw["triggers"], "performance": {"floor": 0.8, "consecutive": 2}, **triggers}
    return parse_spec(raw)


@pytest.fixture(scope="module")
def stream() -> pd.DataFrame:
    return synthetic_stream(n_batches=6, drift_at=4)


@pytest.fixture(scope="module")
def profile(stream: pd.DataFrame) -> ReferenceProfile:
    train = stream.iloc[: 2 * SYNTH_ROWS]
    return build_profile(train, ["x1", "x2"], ["c"], bins=20, labels=train["y"].to_numpy())


def batch(stream: pd.DataFrame, i: int) -> pd.DataFrame:
    return stream.iloc[i * SYNTH_ROWS : (i + 1) * SYNTH_ROWS].reset_index(drop=True)


def good_scores(frame: pd.DataFrame) -> np.ndarray:
    """Scores of the pre-drift concept (x1 + 0.5 x2 > 0): good before the drift, bad after it."""
    return 1 / (1 + np.exp(-(frame["x1"] + 0.5 * frame["x2"]).to_numpy() * 3))


def run(spec: ModelSpec, profile: ReferenceProfile, frame: pd.DataFrame, prior: StreakState, key: str):
    return assess(
        spec, profile, frame, scores=good_scores(frame), prior=prior, batch_key=key, context=CONTEXT
    )


def test_quiet_batch_measures_and_decides_nothing(stream, profile) -> None:
    out = run(make_spec(), profile, batch(stream, 2), StreakState(), "b2")
    assert not out.drift_detected and not out.performance_degraded
    assert list(out.events) == [Event.DRIFT_MEASURED.value]
    payload = out.events[Event.DRIFT_MEASURED.value]
    assert payload["champion_version"] == "3" and payload["drift_detected"] is False
    assert payload["performance"]["streak"] == 0
    assert out.streak == StreakState(value=0, last_batch="b2") and out.streak_changed


def test_streak_needs_k_batches_and_is_the_backtesters_rule(stream, profile) -> None:
    spec = make_spec()
    state, reports = StreakState(), []
    fired = []
    for i in (4, 5):  # both after the drift: the concept flipped, so the old scores are bad
        out = run(spec, profile, batch(stream, i), state, f"b{i}")
        assert out.performance is not None and out.performance.batch_degraded
        state = out.streak
        reports.append(out.performance.report)
        fired.append(out.performance_degraded)
        # the streak carried as one number decides what the whole history decides
        assert out.performance_degraded == evaluate_trigger(reports, spec.triggers.performance).degraded
    assert fired == [False, True] and state.value == 2
    assert Event.PERFORMANCE_DEGRADED.value in out.events
    assert out.events[Event.PERFORMANCE_DEGRADED.value]["streak"] == 2
    assert out.drift_detected and Event.DRIFT_DETECTED.value in out.events
    assert all(f["drifted"] for f in out.events[Event.DRIFT_DETECTED.value]["features"].values())


def test_same_batch_is_not_counted_twice(stream, profile) -> None:
    spec = make_spec()
    first = run(spec, profile, batch(stream, 4), StreakState(), "b4")
    again = run(spec, profile, batch(stream, 4), first.streak, "b4")
    assert first.streak.value == 1 and again.streak == first.streak
    assert again.performance is not None and not again.performance.counted and not again.streak_changed


def test_good_batch_resets_the_streak(stream, profile) -> None:
    out = run(make_spec(), profile, batch(stream, 3), StreakState(value=5, last_batch="x"), "b3")
    assert out.streak.value == 0 and not out.performance_degraded


def test_disabled_triggers_measure_but_do_not_fire(stream, profile) -> None:
    spec = make_spec(drift={"enabled": False, "bins": 20}, performance={"enabled": False, "floor": 0.8})
    out = run(spec, profile, batch(stream, 5), StreakState(value=3), "b5")
    assert out.drift.dataset_drift and not out.drift_detected
    assert out.performance is not None and out.performance.batch_degraded and not out.performance_degraded
    assert list(out.events) == [Event.DRIFT_MEASURED.value]


def test_unlabelled_or_unscored_batch_keeps_the_streak(stream, profile) -> None:
    spec = make_spec()
    frame = batch(stream, 5).assign(y=np.nan)
    prior = StreakState(value=1, last_batch="b4")
    out = assess(spec, profile, frame, scores=good_scores(frame), prior=prior, batch_key="b5", context={})
    assert out.performance is None and out.streak == prior and not out.streak_changed
    out = assess(spec, profile, batch(stream, 5), scores=None, prior=prior, batch_key="b5", context={})
    assert out.performance is None and out.labelled_rows == SYNTH_ROWS


def test_markdown_summary_names_the_verdicts(stream, profile) -> None:
    result = run(make_spec(), profile, batch(stream, 5), StreakState(value=1), "b5")
    out = MonitorOutcome(
        model="synth",
        status="measured",
        champion_version="3",
        source="test",
        selection="file",
        drift=result.drift,
        drift_detected=result.drift_detected,
        performance=result.performance,
        performance_degraded=result.performance_degraded,
        events={name: "id" for name in result.events},
    )
    text = markdown_summary(out)
    assert "**DETECTED**" in text and "**DEGRADED**" in text and "2/2" in text
