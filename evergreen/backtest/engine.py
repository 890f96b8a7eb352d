"""The replay loop: one policy over the scored batches, and every policy over one history."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evergreen.backtest import estimates, updates
from evergreen.backtest.cache import Fitted, ReplayCache
from evergreen.backtest.labels import labelled_end, performance_batch
from evergreen.backtest.policies import Policy, with_baselines
from evergreen.backtest.ranking import summarize
from evergreen.backtest.replay import Replay, prepare
from evergreen.backtest.resolve import ResolvedPolicy, resolve_policy
from evergreen.backtest.results import (
    BacktestReport,
    BatchRecord,
    PolicyResult,
    detection_delays,
    finite_or_none,
    mean_or_none,
    stamp,
)
from evergreen.performance import PerformanceReport, evaluate_trigger
from evergreen.policy import (
    Decision,
    combine,
    cooldown_check,
    drift_check,
    never,
    performance_check,
    schedule_check,
    volume_check,
)
from evergreen.spec import ModelSpec
from evergreen.spec_update import Update

OnBatch = Callable[[str, int, int], None]
"""Progress callback: (policy name, scored batches done, scored batches in total)."""


@dataclass
class _State:
    """What one policy's replay carries from batch to batch."""

    champ: Fitted
    champ_batch: int
    reference: float | None = None  # the champion's hold-out metric (performance max_drop)
    last_promotion: pd.Timestamp | None = None
    since: int = 0  # scored batches since the last retrain decision
    perf_history: list[PerformanceReport] = field(default_factory=list)
    est_streak: int = 0  # consecutive degraded estimates (trigger.estimated)
    updates: int = 0  # warm-start updates since the last full fit (training.update)


@dataclass
class _Signals:
    """The trigger rules' verdicts on one batch, and the numbers recorded with it."""

    rules: list[Decision] = field(default_factory=list)
    drift_score: float | None = None
    drifted: bool | None = None
    degraded: bool | None = None
    estimate: dict[str, Any] = field(default_factory=dict)


def _evaluate_rules(rp: ResolvedPolicy, cache: ReplayCache, state: _State, i: int) -> _Signals:
    """Each configured trigger rule (performance, drift, volume, schedule) on batch i."""
    spec = rp.spec
    delay = rp.policy.label_delay
    hi = labelled_end(cache.replay, i, delay)  # labels of the last `delay` batches are not in yet
    out = _Signals()
    champ_end = state.champ.holdout[1] if state.champ.holdout else state.champ.train[1]
    j = performance_batch(cache.replay, i, delay, champ_end) if delay else i
    if rp.performance is not None and j is not None:
        perf = cache.performance(
            state.champ, j, spec.metric, state.reference, rp.performance_floor, rp.performance.alpha
        )
        state.perf_history.append(perf)
        pdec = evaluate_trigger(state.perf_history, rp.performance)
        out.degraded = pdec.batches[-1]
        out.rules.append(performance_check(pdec.degraded, "; ".join(pdec.reasons)))
    if rp.drift is not None:
        rep = cache.drift(state.champ, i, rp.drift)
        out.drift_score, out.drifted = rep.drift_score, rep.dataset_drift
        out.rules.append(drift_check(rep.dataset_drift, rep.summary, rep.drift_score))
    if rp.volume is not None:
        champ = state.champ
        # New rows since the champion's data version (production's `data_rows` lineage tag): a gated
        # champion that was not refit saw its hold-out as data too, so count from the hold-out's end.
        data_end = champ.holdout[1] if champ.holdout else champ.train[1]
        out.rules.append(volume_check(hi - data_end, champ.train_rows, rp.volume.min_new_share))
    if rp.schedule is not None:
        out.rules.append(schedule_check(state.since, rp.schedule))
    if rp.estimated is not None:  # label-free: batch i itself, whatever the label delay
        perf_fired = out.degraded is not None and out.rules[0].retrain  # the performance rule comes first
        est, state.est_streak, out.estimate = estimates.evaluate(
            cache, spec, rp.estimated, state.champ, i, prior=state.est_streak,
            label_delay=delay, performance_fired=perf_fired,
        )  # fmt: skip
        out.rules += [est] if est is not None else []
    return out


def _decide(
    rp: ResolvedPolicy, state: _State, rules: list[Decision], now: pd.Timestamp, last: bool
) -> Decision:
    """Combine the rules; the last batch never retrains (nothing left to score) and the cooldown applies."""
    decision = combine(rules) if rules else never()
    if last:
        return Decision(retrain=False, reason="end", detail="last batch: nothing left to score")
    if not decision.retrain:
        return decision
    cd = cooldown_check(
        None if state.last_promotion is None else state.last_promotion.to_pydatetime(),
        now.to_pydatetime(),
        rp.cooldown,
        reason=decision.reason,
    )
    if cd.retrain:
        return decision
    return Decision(retrain=False, reason="cooldown", detail=f"{decision.reason} fired; {cd.detail}")


def _update_of(rp: ResolvedPolicy) -> Update | None:
    """The policy's training.update if it sets one (null included), else the spec's."""
    return rp.policy.update if "update" in rp.policy.model_fields_set else rp.spec.training.update


def _challenger(
    rp: ResolvedPolicy, cache: ReplayCache, state: _State, hi: int, rec: dict[str, Any], holdout: bool
) -> Fitted:
    """A full fit, or a warm-start update of the champion (updates.mode_for decides, as production)."""
    upd = _update_of(rp)
    mode = updates.mode_for(upd, state.updates, rec["reason"])
    rec["mode"] = mode
    if mode == "update" and upd is not None:
        return updates.fit_update(cache, rp.spec, state.champ, hi, upd, holdout=holdout)
    return cache.fit(rp.spec, hi, holdout=holdout)


def _retrain_gated(
    rp: ResolvedPolicy, cache: ReplayCache, state: _State, hi: int, rec: dict[str, Any]
) -> Fitted | None:
    """Train a challenger with the hold-out left out, gate it against the champion; refit if asked."""
    spec = rp.spec
    chal = _challenger(rp, cache, state, hi, rec, holdout=True)
    rec["train_seconds"] = chal.seconds
    if chal.error:
        rec["detail"] += f"; challenger not trained: {chal.error}"
        return None
    verdict = cache.gate(spec, chal, state.champ)
    rec["gate_passed"] = verdict.passed
    rec["gate_ci_low"] = None if verdict.ci_low is None else finite_or_none(verdict.ci_low)
    new: Fitted | None = None
    if verdict.passed:
        new = chal
        refit = spec.training.refit if rp.policy.refit is None else rp.policy.refit
        if refit and rec["mode"] == "update":
            upd = _update_of(rp)
            assert upd is not None
            new = updates.fit_update(cache, spec, state.champ, hi, upd, holdout=False)
            rec["train_seconds"] += new.seconds
        elif refit:
            new = cache.fit(spec, hi, holdout=False)
            rec["train_seconds"] += new.seconds
        state.reference = finite_or_none(verdict.challenger)
    rec["detail"] += f"; gate: {verdict.summary}"
    return new


def _retrain_ungated(
    rp: ResolvedPolicy, cache: ReplayCache, state: _State, hi: int, rec: dict[str, Any]
) -> Fitted | None:
    """Without a gate nothing is held out and every trained model is promoted."""
    new = _challenger(rp, cache, state, hi, rec, holdout=False)
    rec["train_seconds"] = new.seconds
    state.reference = None
    if new.error:
        rec["detail"] += f"; not trained: {new.error}"
        return None
    return new


def _replay_batch(rp: ResolvedPolicy, cache: ReplayCache, state: _State, i: int) -> BatchRecord:
    """Score batch i with the champion, decide, and retrain (and maybe promote) as the policy says."""
    replay = cache.replay
    lo, hi = replay.bounds[i]
    state.since += 1
    signals = _evaluate_rules(rp, cache, state, i)
    now = replay.batch_end(i)
    decision = _decide(rp, state, signals.rules, now, last=i == replay.n_batches - 1)
    rec: dict[str, Any] = {
        "batch": i,
        "start": stamp(replay.batch_start(i)),
        "end": stamp(now),
        "rows": hi - lo,
        # accuracy is recorded for every classifier (a regression has none); `metric` is the spec's
        "accuracy": None if rp.spec.task == "regression" else cache.metric(state.champ, i, "accuracy"),
        "metric": cache.metric(state.champ, i, rp.spec.metric),
        "champion": state.champ_batch,
        "retrain": decision.retrain,
        "reason": decision.reason,
        "detail": decision.detail,
        "drift_score": signals.drift_score,
        "drifted": signals.drifted,
        "degraded": signals.degraded,
        **signals.estimate,
    }
    if decision.retrain:
        state.since = 0
        retrain = _retrain_gated if rp.gated else _retrain_ungated
        # with delayed labels, train (and hold out) only rows whose labels are in
        new = retrain(rp, cache, state, labelled_end(replay, i, rp.policy.label_delay), rec)
        if new is not None and new.error is None:
            state.champ, state.champ_batch = new, i
            state.last_promotion = now
            state.perf_history = []
            state.est_streak = 0
            state.updates = state.updates + 1 if rec.get("mode") == "update" else 0
            rec["promoted"] = True
    return BatchRecord(**rec)


def _result(rp: ResolvedPolicy, replay: Replay, records: list[BatchRecord], seconds: float) -> PolicyResult:
    """One policy's totals over its per-batch records."""
    delays = detection_delays(records, replay.marked)
    found = [d for d in delays if d is not None]
    return PolicyResult(
        name=rp.name,
        description=rp.policy.description,
        trigger=rp.describe(),
        window=rp.window_label(),
        gated=rp.gated,
        baseline=rp.policy.baseline,
        config=rp.policy.model_dump(mode="json", exclude_unset=True),
        metric=rp.spec.metric,
        batches=records,
        mean_accuracy=mean_or_none([r.accuracy for r in records]),
        mean_metric=mean_or_none([r.metric for r in records]),
        retrains=sum(r.retrain for r in records),
        updates=sum(r.mode == "update" for r in records),
        full_fits=sum(r.mode == "full" for r in records),
        promotions=sum(r.promoted for r in records),
        train_seconds=float(sum(r.train_seconds for r in records)),
        detection_delays=delays,
        mean_detection_delay=float(np.mean(found)) if found else None,
        seconds=seconds,
        **estimates.summary(records, rp.estimated),
    )


def run_policy(
    replay: Replay,
    policy: Policy | ResolvedPolicy,
    *,
    cache: ReplayCache | None = None,
    on_batch: OnBatch | None = None,
) -> PolicyResult:
    """Replay one policy over the batches after warm-up and return its per-batch metrics and totals."""
    rp = policy if isinstance(policy, ResolvedPolicy) else resolve_policy(policy, replay.spec)
    cache = cache or ReplayCache(replay)
    wall = time.perf_counter()
    first_end = replay.bounds[replay.warmup - 1][1]
    champ = cache.fit(rp.spec, first_end, holdout=False)
    if champ.error:
        raise ValueError(
            f"policy {rp.name!r}: cannot train on the {replay.warmup} warm-up batches: {champ.error}"
        )
    state = _State(champ=champ, champ_batch=replay.warmup - 1)
    records: list[BatchRecord] = []
    for i in range(replay.warmup, replay.n_batches):
        records.append(_replay_batch(rp, cache, state, i))
        if on_batch is not None:
            on_batch(rp.name, i - replay.warmup + 1, replay.n_scored)
    return _result(rp, replay, records, time.perf_counter() - wall)


def run_backtest(
    frame: pd.DataFrame,
    spec: ModelSpec,
    policies: Sequence[Policy],
    *,
    batch_period: str | None = None,
    batch_rows: int | None = None,
    warmup: int = 4,
    drifts: Sequence[str | int] = (),
    rank_by: str | None = None,
    on_batch: OnBatch | None = None,
    workers: int = 1,
    baseline_every: int | None = None,
) -> BacktestReport:
    """Replay every policy over `frame` (in `workers` threads, sharing one cache) and summarise.

    With `baseline_every` (the flow always passes one), the every-batch and every-N baselines run first
    (policies.with_baselines); None (default) replays the given policies only.
    """
    start = time.perf_counter()
    if baseline_every is not None:
        policies = with_baselines(list(policies), baseline_every)
    replay = prepare(
        frame, spec, batch_period=batch_period, batch_rows=batch_rows, warmup=warmup, drifts=drifts
    )
    resolved = [resolve_policy(p, spec) for p in policies]
    cache = ReplayCache(replay)
    if workers <= 1:
        results = [run_policy(replay, rp, cache=cache, on_batch=on_batch) for rp in resolved]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(run_policy, replay, rp, cache=cache, on_batch=on_batch) for rp in resolved]
            results = [f.result() for f in futures]
    return summarize(replay, results, rank_by=rank_by).model_copy(
        update={"seconds": time.perf_counter() - start, **cache.stats()}
    )
