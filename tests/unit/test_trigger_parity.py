"""Production and the backtester make the same trigger decisions on the same batch history.

One synthetic history (abrupt covariate + concept drift at batch 8, a covariate shift at batch 16)
is replayed twice:

(a) **Backtester**: `evergreen.backtest.run_policy` with the policy `trigger: spec` (the spec's own
    drift, performance and volume triggers and its cooldown), without and with the gate (no refit).
    Each BatchRecord holds its decision.
(b) **Production**: per batch, the functions the production flows call, fed what production would
    hold at that point:
    - the monitor flow's `evergreen.monitoring.assess` (drift verdict and performance streak), with
      the streak state threaded from batch to batch as the champion's version tags carry it, and
      reset when the champion changes (a new version has no streak tags);
    - the ingest flow's `evergreen.volume.volume_inputs` / `volume_decision`, from the champion's
      lineage tags (`data_rows`, `train_rows`) and the dataset's row count;
    - the retrain flow's `policy.cooldown_check` (tasks.registry.check_cooldown), with the last
      promotion time.
    Every rule that fires is an event, each event a retrain run; the run's reason is the first
    firing rule in the backtester's priority (performance, drift, volume: `policy.combine`), and the
    cooldown stops the run.

The champion models, their reference profiles and scores are inputs, not decisions: both sides use
the backtester's fitted models, and production's champion changes where the backtester promoted (with
the gate, its profile carries the challenger's hold-out metric, as registration stores it).
Decisions are compared per batch: the batch's drift verdict and degraded flag, retrain yes/no and
the reason (including "cooldown").
The same history is replayed once more with `triggers.drift.weighting: importance` and the
multivariate detector enabled (the profile's importance and the reference sample are what
registration stores: `feature_importance` and `reference_sample` over the champion's training rows).

A static check makes sure the production side of this test is what the flows run: flows/monitor_run.py
calls `assess` and implements no rule itself, ingest calls `volume_decision`, and the retrain flow's
cooldown task calls `cooldown_check`.

Schedule: production's schedule is the deployment's cron (`schedule:` in the spec, rendered into
prefect.yaml); there is no production function to compare. The backtester's `schedule_check(every=N)`
counts N scored batches since the last retrain, which corresponds to a cron firing every N batch
periods (e.g. weekly batches and `every: 4` ~ a monthly cron), except that a retrain resets the count.
"""

from __future__ import annotations

import ast
import copy
import functools
from pathlib import Path

import pandas as pd
import pytest

from evergreen import backtest as bt
from evergreen.drift import ReferenceProfile
from evergreen.monitoring import StreakState, assess
from evergreen.policy import Decision, combine, cooldown_check
from evergreen.spec import parse_spec
from evergreen.volume import volume_decision, volume_inputs
from tests.support.builders import SYNTH_ROWS as ROWS
from tests.support.builders import synthetic_spec_dict, synthetic_stream

ROOT = Path(__file__).resolve().parents[2]
WARMUP = 3
N_BATCHES = 24

PARITY_SPEC = {
    **synthetic_spec_dict(),
    "triggers": {
        "drift": {"statistic": "psi", "threshold": 0.2, "share": 0.5, "bins": 20},
        "performance": {"floor": 0.8, "consecutive": 2, "max_drop": 0.1},
        "volume": {"min_new_share": 2.5},
        "cooldown": "25D",  # batches are 10 days: a promotion blocks the next two batches
    },
}


# drift explained by importance and the multivariate detector (docs/drift.md): same functions both sides
EXPLAINED = {
    "weighting": "importance",
    "multivariate": {"enabled": True, "alpha": 0.01, "reference_rows": 200},
}


def history() -> pd.DataFrame:
    frame = synthetic_stream(n_batches=N_BATCHES, drift_at=8, seed=3)
    late = frame.index >= 16 * ROWS  # a second covariate shift under the same concept
    frame.loc[late, ["x1", "x2"]] -= 1.5
    frame.loc[late, "y"] = (frame.loc[late, "x1"] + 0.5 * frame.loc[late, "x2"] < 3.75).astype(int)
    return frame


def production_decisions(
    replay: bt.Replay, cache: bt.ReplayCache, rp: bt.ResolvedPolicy, records: list[bt.BatchRecord]
) -> list[dict]:
    """What the monitor, ingest and retrain flows decide per batch (see the module docstring)."""
    spec = rp.spec
    data_rows = replay.bounds[replay.warmup - 1][1]  # the dataset's rows when the champion trained
    champ = cache.fit(spec, data_rows, holdout=False)
    profile = cache.profile(champ, spec.triggers.drift.bins)
    mv = spec.triggers.drift.multivariate
    streak = StreakState()
    last_promotion = None
    out = []
    for rec in records[:-1]:  # the backtester's last batch has nothing left to score: no decision
        i = rec.batch
        lo, hi = replay.bounds[i]
        result = assess(
            spec,
            profile,
            replay.frame.iloc[lo:hi],
            scores=cache.scores(champ, lo, hi),
            prior=streak,
            batch_key=f"batch-{i}",
            context={},
            # what registration stores with the version: reference_sample over the champion's training rows
            reference=cache.reference(champ, mv.reference_rows) if mv.enabled else None,
        )
        streak = result.streak
        volume = volume_inputs(hi, {"data_rows": str(data_rows), "train_rows": str(champ.train_rows)})
        rules: list[Decision] = [result.performance_decision or Decision(retrain=False, reason="n/a")]
        rules += [result.drift_decision, volume_decision(volume.new_rows, volume.champion_rows, spec)]
        fired = combine(rules)
        retrain, reason = fired.retrain, fired.reason
        now = replay.batch_end(i).to_pydatetime()
        if retrain and not cooldown_check(last_promotion, now, spec.triggers.cooldown, reason=reason).retrain:
            retrain, reason = False, "cooldown"
        assert result.performance is not None
        out.append(
            {
                "batch": i,
                "drifted": result.drift.dataset_drift,
                "degraded": result.performance.batch_degraded,
                "retrain": retrain,
                "reason": reason,
            }
        )
        if rec.promoted:  # a new champion: a new model version, so no streak tags yet
            champ, profile = promoted(cache, rp, hi, champ)
            data_rows, streak, last_promotion = hi, StreakState(), now
    return out


def promoted(
    cache: bt.ReplayCache, rp: bt.ResolvedPolicy, end: int, previous: bt.Fitted
) -> tuple[bt.Fitted, ReferenceProfile]:
    """The new champion and the reference profile its registration stores (hold-out metric included)."""
    spec = rp.spec
    if not rp.gated:
        new = cache.fit(spec, end, holdout=False)
        return new, cache.profile(new, spec.triggers.drift.bins)
    new = cache.fit(spec, end, holdout=True)
    verdict = cache.gate(spec, new, previous)
    profile = cache.profile(new, spec.triggers.drift.bins)
    return new, profile.model_copy(update={"metrics": {f"holdout_{spec.metric}": verdict.challenger}})


@functools.cache
def replayed(gated: bool, explained: bool = False) -> tuple[list[bt.BatchRecord], list[dict]]:
    """The backtester's records and production's decisions per batch under the policy `trigger: spec`."""
    raw_spec = copy.deepcopy(PARITY_SPEC)
    if explained:
        raw_spec["triggers"]["drift"].update(EXPLAINED)
    spec = parse_spec(raw_spec)
    replay = bt.prepare(history(), spec, batch_rows=ROWS, warmup=WARMUP)
    raw = {"name": "spec", "trigger": "spec", "gate": gated, "refit": False}
    (policy,) = bt.parse_policies([raw]).policies
    rp = bt.resolve_policy(policy, spec)
    cache = bt.ReplayCache(replay)
    records = bt.run_policy(replay, rp, cache=cache).batches
    return records, production_decisions(replay, cache, rp, records)


def replay_both(gated: bool, explained: bool = False) -> tuple[list[dict], list[dict]]:
    """(backtester, production) decisions per batch."""
    records, production = replayed(gated, explained)
    keys = ("batch", "drifted", "degraded", "retrain", "reason")
    return [{k: getattr(r, k) for k in keys} for r in records[:-1]], production


@pytest.mark.parametrize("gated", [False, True], ids=["ungated", "gated"])
def test_every_batch_decided_the_same(gated: bool) -> None:
    backtester, production = replay_both(gated)
    assert production == backtester


def test_importance_weighting_and_multivariate_decided_the_same() -> None:
    backtester, production = replay_both(True, explained=True)
    assert production == backtester
    # not vacuous: the backtester's drift verdicts ran the classifier and weighted the share
    details = " ".join(r.detail for r in replayed(True, explained=True)[0])
    assert "multivariate drift: domain classifier AUC" in details and "importance-weighted share" in details


def test_the_history_exercises_every_rule() -> None:
    """Otherwise the parity above would be vacuous."""
    backtester, _ = replay_both(False)
    reasons = {r["reason"] for r in backtester}
    assert {"drift", "performance", "volume", "cooldown", "no-trigger"} <= reasons, reasons
    assert any(r["degraded"] and not r["retrain"] for r in backtester)  # a streak of one is not enough


def _calls(path: str) -> set[str]:
    tree = ast.parse((ROOT / path).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            names.add(f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else "")
    return names


RULES = {"evaluate_trigger", "batch_degraded", "drift_check", "performance_check", "volume_check"}
DRIFT_RULES = {"dataset_verdict", "multivariate_check", "domain_classifier", "weighted_share"}


def test_the_flows_call_these_functions() -> None:
    """The production side above is what runs: no flow or task re-implements a rule beside it."""
    monitor = _calls("flows/monitor_run.py") | _calls("tasks/monitoring.py")  # the monitor flow's body
    assert "assess" in monitor
    assert not monitor & (RULES | DRIFT_RULES | {"measure_drift", "measure_performance"})
    assert {"volume_inputs", "volume_decision"} <= _calls("flows/ingest_run.py")  # the ingest flow's body
    assert "cooldown_check" in _calls("tasks/registry.py")
    assert "check_cooldown" in _calls("flows/retrain_run.py")  # the retrain flow's body (flows/retrain.py)
    for path in (
        "flows/monitor.py",
        "flows/monitor_run.py",
        "flows/ingest.py",
        "flows/ingest_run.py",
        "flows/retrain.py",
        "flows/retrain_run.py",
        "tasks/monitoring.py",
        "tasks/drift.py",
    ):
        assert not _calls(path) & (RULES | DRIFT_RULES), path
