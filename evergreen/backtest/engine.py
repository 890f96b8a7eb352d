"""The replay loop: one policy over the scored batches, and every policy over one history."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from evergreen.backtest.cache import Fitted, ReplayCache
from evergreen.backtest.policies import Policy
from evergreen.backtest.ranking import summarize
from evergreen.backtest.replay import Replay, prepare
from evergreen.backtest.resolve import ResolvedPolicy, resolve_policy
from evergreen.backtest.results import (
    BacktestReport,
    BatchRecord,
    PolicyResult,
    _f,
    _nanmean,
    _stamp,
    detection_delays,
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

OnBatch = Callable[[str, int, int], None]
"""Progress callback: (policy name, scored batches done, scored batches in total)."""


def run_policy(
    replay: Replay,
    policy: Policy | ResolvedPolicy,
    *,
    cache: ReplayCache | None = None,
    on_batch: OnBatch | None = None,
) -> PolicyResult:
    """Replay one policy over the batches after warm-up and return its per-batch metrics and totals."""
    rp = policy if isinstance(policy, ResolvedPolicy) else resolve_policy(policy, replay.spec)
    spec = rp.spec
    cache = cache or ReplayCache(replay)
    wall = time.perf_counter()
    n = replay.n_batches
    first_end = replay.bounds[replay.warmup - 1][1]
    champ = cache.fit(spec, first_end, holdout=False)
    if champ.error:
        raise ValueError(
            f"policy {rp.name!r}: cannot train on the {replay.warmup} warm-up batches: {champ.error}"
        )
    champ_batch = replay.warmup - 1
    reference: float | None = None  # the champion's hold-out metric (performance max_drop)
    last_promotion: pd.Timestamp | None = None
    since = 0
    perf_history: list[PerformanceReport] = []
    records: list[BatchRecord] = []
    for i in range(replay.warmup, n):
        lo, hi = replay.bounds[i]
        since += 1
        rules: list[Decision] = []
        drift_score = drifted = degraded = None
        if rp.performance is not None:
            perf = cache.performance(
                champ, i, spec.metric, reference, rp.performance_floor, rp.performance.alpha
            )
            perf_history.append(perf)
            pdec = evaluate_trigger(perf_history, rp.performance)
            degraded = pdec.batches[-1]
            rules.append(performance_check(pdec.degraded, "; ".join(pdec.reasons)))
        if rp.drift is not None:
            rep = cache.drift(champ, i, rp.drift)
            drift_score, drifted = rep.drift_score, rep.dataset_drift
            rules.append(drift_check(rep.dataset_drift, rep.summary, rep.drift_score))
        if rp.volume is not None:
            rules.append(volume_check(hi - champ.train[1], champ.train_rows, rp.volume.min_new_share))
        if rp.schedule is not None:
            rules.append(schedule_check(since, rp.schedule))
        decision = combine(rules) if rules else never()
        now = replay.batch_end(i)
        if i == n - 1:
            decision = Decision(retrain=False, reason="end", detail="last batch: nothing left to score")
        elif decision.retrain:
            cd = cooldown_check(
                None if last_promotion is None else last_promotion.to_pydatetime(),
                now.to_pydatetime(),
                rp.cooldown,
                reason=decision.reason,
            )
            if not cd.retrain:
                decision = Decision(
                    retrain=False, reason="cooldown", detail=f"{decision.reason} fired; {cd.detail}"
                )
        rec: dict[str, Any] = {
            "batch": i,
            "start": _stamp(replay.batch_start(i)),
            "end": _stamp(now),
            "rows": hi - lo,
            "accuracy": cache.metric(champ, i, "accuracy"),
            "metric": cache.metric(champ, i, spec.metric),
            "champion": champ_batch,
            "retrain": decision.retrain,
            "reason": decision.reason,
            "detail": decision.detail,
            "drift_score": drift_score,
            "drifted": drifted,
            "degraded": degraded,
        }
        if decision.retrain:
            since = 0
            new: Fitted | None = None
            if rp.gated:
                chal = cache.fit(spec, hi, holdout=True)
                rec["train_seconds"] = chal.seconds
                if chal.error:
                    rec["detail"] += f"; challenger not trained: {chal.error}"
                else:
                    verdict = cache.gate(spec, chal, champ)
                    rec["gate_passed"] = verdict.passed
                    rec["gate_ci_low"] = None if verdict.ci_low is None else _f(verdict.ci_low)
                    if verdict.passed:
                        new = chal
                        refit = spec.training.refit if rp.policy.refit is None else rp.policy.refit
                        if refit:
                            new = cache.fit(spec, hi, holdout=False)
                            rec["train_seconds"] += new.seconds
                        reference = _f(verdict.challenger)
                    rec["detail"] += f"; gate: {verdict.summary}"
            else:
                new = cache.fit(spec, hi, holdout=False)
                rec["train_seconds"] = new.seconds
                if new.error:
                    rec["detail"] += f"; not trained: {new.error}"
                    new = None
                reference = None
            if new is not None and new.error is None:
                champ, champ_batch = new, i
                last_promotion = now
                perf_history = []
                rec["promoted"] = True
        records.append(BatchRecord(**rec))
        if on_batch is not None:
            on_batch(rp.name, i - replay.warmup + 1, replay.n_scored)
    delays = detection_delays(records, replay.marked)
    found = [d for d in delays if d is not None]
    return PolicyResult(
        name=rp.name,
        description=rp.policy.description,
        trigger=rp.describe(),
        window=rp.window_label(),
        gated=rp.gated,
        config=rp.policy.model_dump(mode="json", exclude_unset=True),
        metric=spec.metric,
        batches=records,
        mean_accuracy=_nanmean([r.accuracy for r in records]),
        mean_metric=_nanmean([r.metric for r in records]),
        retrains=sum(r.retrain for r in records),
        promotions=sum(r.promoted for r in records),
        train_seconds=float(sum(r.train_seconds for r in records)),
        detection_delays=delays,
        mean_detection_delay=float(np.mean(found)) if found else None,
        seconds=time.perf_counter() - wall,
    )


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
) -> BacktestReport:
    """Replay every policy over `frame` (in `workers` threads, sharing one cache) and summarise."""
    start = time.perf_counter()
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
