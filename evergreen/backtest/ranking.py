"""Ranking the policies of a backtest and marking the Pareto front of metric vs retrains."""

from __future__ import annotations

import math
from collections.abc import Sequence

from evergreen.backtest.compare import paired_difference
from evergreen.backtest.replay import Replay
from evergreen.backtest.results import BacktestReport, PolicyResult, stamp
from evergreen.spec import HIGHER_IS_BETTER


def _score_of(p: PolicyResult, rank_by: str) -> float | None:
    return p.mean_accuracy if rank_by == "accuracy" else p.mean_metric


def _against_every_batch(results: list[PolicyResult], rank_by: str) -> list[PolicyResult]:
    """Each policy's training CPU over the every-batch baseline's, and its paired score difference.

    Both stay None without that baseline in the run.
    """
    from evergreen.backtest.policies import EVERY_BATCH

    ref = next((p for p in results if p.name == EVERY_BATCH), None)
    if ref is None:
        return results

    def per_batch(p: PolicyResult) -> list[float | None]:
        return [b.accuracy if rank_by == "accuracy" else b.metric for b in p.batches]

    out = []
    for p in results:
        update: dict[str, object] = {
            "vs_every_batch": paired_difference(per_batch(p), per_batch(ref), score=rank_by)
            if len(p.batches) == len(ref.batches)
            else None
        }
        if ref.train_seconds:
            update["cpu_ratio"] = p.train_seconds / ref.train_seconds
        out.append(p.model_copy(update=update))
    return out


def summarize(
    replay: Replay, results: Sequence[PolicyResult], *, rank_by: str | None = None
) -> BacktestReport:
    """Rank policies (best mean `rank_by`, then fewer retrains) and mark the Pareto front."""
    metric = replay.spec.metric
    rank_by = rank_by or metric
    allowed = [metric] if replay.spec.task == "regression" else ["accuracy", metric]
    if rank_by not in allowed:
        raise ValueError(f"rank_by must be one of {sorted(set(allowed))} for this spec, not {rank_by!r}")
    higher = HIGHER_IS_BETTER[rank_by]
    sign = 1.0 if higher else -1.0

    def goodness(p: PolicyResult) -> float:
        v = _score_of(p, rank_by)
        return -math.inf if v is None else sign * v

    ordered = sorted(results, key=lambda p: (-goodness(p), p.retrains, p.name))
    ranked: list[PolicyResult] = []
    for r, p in enumerate(ordered, start=1):
        dominated = any(
            goodness(q) >= goodness(p)
            and q.retrains <= p.retrains
            and (goodness(q), -q.retrains) != (goodness(p), -p.retrains)
            for q in results
        )
        ranked.append(p.model_copy(update={"rank": r, "pareto": not dominated}))
    ranked = _against_every_batch(ranked, rank_by)
    by_name = {p.name: p for p in ranked}
    policies = [by_name[p.name] for p in results]
    front = sorted((p for p in ranked if p.pareto), key=lambda p: p.retrains)
    tcol = replay.spec.data.time_column
    return BacktestReport(
        model=replay.spec.name,
        metric=metric,
        rank_by=rank_by,
        batching=replay.batching,
        warmup=replay.warmup,
        n_batches=replay.n_batches,
        scored_batches=replay.n_scored,
        start=stamp(replay.frame[tcol].iloc[0]),
        end=stamp(replay.frame[tcol].iloc[-1]),
        rows=len(replay.frame),
        marked_drifts=list(replay.marked),
        policies=policies,
        best=ordered[0].name if ordered else None,
        pareto_front=[p.name for p in front],
    )
