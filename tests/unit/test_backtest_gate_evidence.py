"""The backtester's gate judges only unseen hold-out rows, as production's retrain flow does (issue 9 case 7).

A refit champion trained on its own hold-out, so the next retrain's hold-out (longer than a batch,
retrained on consecutive batches) starts with rows the champion has seen. Production cuts them with
`training.champion_trained_until` (from the champion's lineage tags) and `training.unseen_holdout`,
and `gate.with_evidence` turns fewer than `gate.min_holdout_rows` unseen rows into 'insufficient
evidence'. Each backtested gate is recomputed here the way the retrain flow (flows/retrain_run.py)
does it, from the tags production registers, and must be the same decision; a static check makes
sure both sides call these functions.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

from evergreen import backtest as bt
from evergreen import gate, training
from evergreen.spec import ModelSpec, parse_spec
from tests.support.builders import SYNTH_ROWS as ROWS
from tests.support.builders import synthetic_spec_dict, synthetic_stream

ROOT = Path(__file__).resolve().parents[2]
HOLDOUT = ROWS + ROWS // 2  # half a batch more than a batch: a refit champion has seen 120 of its rows
RULE = {"champion_trained_until", "unseen_holdout", "with_evidence"}


def _spec(min_rows: int) -> ModelSpec:
    raw = synthetic_spec_dict()
    raw["training"]["holdout"] = {"period": None, "rows": HOLDOUT}
    raw["training"]["refit"] = True
    # A loose gate, so that champions are promoted (and refit) often.
    raw["gate"] = {"floor": None, "tolerance": 1.0, "n_bootstrap": 200, "min_holdout_rows": min_rows}
    return parse_spec(raw)


def _production_gate(
    spec: ModelSpec, cache: bt.ReplayCache, end: int, challenger: bt.Fitted, champion: bt.Fitted, tags: dict
) -> gate.GateDecision:
    """flows/retrain_run.py `_Run.judge_and_register`, with the backtester's fitted models as the models."""
    frame = cache.replay.frame.iloc[:end]
    split = training.split(frame, spec)
    unseen = training.unseen_holdout(
        split.holdout, spec.data.time_column, training.champion_trained_until(tags)
    )
    enough = len(unseen) >= spec.gate.min_holdout_rows
    judged = unseen if enough else split.holdout
    lo, hi = int(judged.index[0]), int(judged.index[-1]) + 1
    verdict = gate.decide(
        spec.gate,
        spec.metric,
        cache.replay.y[lo:hi],
        cache.scores(challenger, lo, hi),
        cache.scores(champion, lo, hi),
        latency_p95_ms=None,
    )
    return gate.with_evidence(
        verdict,
        unseen_rows=len(unseen),
        excluded_rows=len(split.holdout) - len(unseen),
        min_rows=spec.gate.min_holdout_rows,
    )


@functools.cache
def replay_both(min_rows: int) -> list[tuple[bt.BatchRecord, gate.GateDecision, gate.GateDecision]]:
    """Per retrain: (the backtester's record, its gate decision, production's decision on the same frames)."""
    spec = _spec(min_rows)
    replay = bt.prepare(synthetic_stream(n_batches=10, seed=5), spec, batch_rows=ROWS, warmup=3)
    raw = {"name": "every-batch", "trigger": {"schedule": {"every": 1}, "cooldown": None}, "gate": True}
    (policy,) = bt.parse_policies([raw]).policies
    rp = bt.resolve_policy(policy, spec)
    cache = bt.ReplayCache(replay)
    records = bt.run_policy(replay, rp, cache=cache).batches
    tcol = spec.data.time_column
    times = replay.frame[tcol]

    def when(row: int) -> str:
        return str(times.iloc[row])

    first_end = replay.bounds[replay.warmup - 1][1]
    champ = cache.fit(spec, first_end, holdout=False)
    tags = {"train_end": when(first_end - 1), "refit": "false"}  # the seeded champion
    out = []
    for rec in records:
        if not rec.retrain:
            continue
        hi = replay.bounds[rec.batch][1]
        chal = cache.fit(spec, hi, holdout=True)
        out.append((rec, cache.gate(spec, chal, champ), _production_gate(spec, cache, hi, chal, champ, tags)))
        if rec.promoted:  # production registers the refit with its judged challenger's hold-out bounds
            assert chal.holdout is not None
            champ = cache.fit(spec, hi, holdout=False)
            tags = {"train_end": when(hi - 1), "holdout_end": when(chal.holdout[1] - 1), "refit": "true"}
    return out


@pytest.mark.parametrize("min_rows", [100, 300])
def test_backtester_gate_is_productions_gate(min_rows: int) -> None:
    rows = replay_both(min_rows)
    assert len(rows) >= 5
    for rec, backtested, production in rows:
        assert backtested.model_dump() == production.model_dump(), rec.batch
        assert rec.gate_passed == backtested.passed
        assert rec.promoted == backtested.passed


def test_seen_rows_are_excluded_after_a_refit() -> None:
    """min_holdout_rows 100: the 120 seen rows are left out and the gate judges the 240 unseen ones."""
    rows = replay_both(100)
    excluded = [d for _, d, _ in rows if d.n_excluded]
    assert excluded, "no retrain followed a refit: the test would be vacuous"
    for d in excluded:
        assert (d.n_excluded, d.n_holdout, d.insufficient_evidence) == (HOLDOUT - ROWS, ROWS, False)


def test_too_few_unseen_rows_is_insufficient_evidence() -> None:
    """min_holdout_rows 300: 240 unseen rows are not enough; recorded like a rejection, never promoted."""
    rows = replay_both(300)
    short = [(rec, d) for rec, d, _ in rows if d.insufficient_evidence]
    assert short and any(d.outcome == "passed" for _, d, _ in rows)
    for rec, d in short:
        assert d.outcome == "insufficient_evidence" and d.n_excluded > 0
        assert rec.gate_passed is False and not rec.promoted
        assert "gate: insufficient evidence" in rec.detail


def _calls(path: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse((ROOT / path).read_text())):
        if isinstance(node, ast.Call):
            f = node.func
            names.add(f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else "")
    return names


def test_both_sides_call_the_same_functions() -> None:
    """The production side above is what the retrain flow runs, and the backtester runs it too."""
    assert _calls("flows/retrain_run.py") >= RULE  # the retrain flow's body (flows/retrain.py)
    assert _calls("evergreen/backtest/cache.py") >= RULE
