"""The label-free estimate in the replay (policy `trigger.estimated`; docs/estimate.md "Backtest").

At batch i the champion's CBPE estimate of batch i is available at once (it needs no labels), while
the performance rule sees batch i - label_delay. Per batch this module records the estimate, its
bound, the realised metric once labels are in (so the report can give the estimate's mean absolute
error), and whether the estimated rule fired. A firing is *early* when the batch is a real
degradation (its labels, once in, put it significantly below the same floor / hold-out - max_drop
with the same alpha) and the labels are not in yet (label_delay > 0) and the performance rule has not
fired at that batch: the estimate saw it `label_delay` batches before the labels could.

The champion's calibrator is what production stores: isotonic regression of the hold-out labels on
the scores of the twin trained without that hold-out (a gated challenger is that twin; for an
ungated or refit champion the twin is fitted once, through the shared cache).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from evergreen.backtest.cache import Fitted, ReplayCache
from evergreen.backtest.results import BatchRecord, finite_or_none, mean_or_none
from evergreen.estimate import Calibrator, fit_calibrator
from evergreen.estimate_trigger import step
from evergreen.policy import Decision
from evergreen.spec import EstimatedPerformanceTrigger, ModelSpec


def calibrator(cache: ReplayCache, spec: ModelSpec, champ: Fitted) -> Calibrator | None:
    """The champion's calibrator (None when its hold-out twin cannot be trained)."""
    end = champ.holdout[1] if champ.holdout else champ.train[1]

    def compute() -> Calibrator | None:
        twin = champ if champ.holdout else cache.fit(spec, end, holdout=True)
        if twin.error or twin.holdout is None:
            return None
        lo, hi = twin.holdout
        return fit_calibrator(spec.task, cache.replay.y[lo:hi], cache.scores(twin, lo, hi))

    return cache.memo(("calibrator", champ.key), "calibrate", compute)


def _really_degraded(
    cache: ReplayCache, champ: Fitted, i: int, trig: EstimatedPerformanceTrigger, reference: float | None
) -> bool:
    """The batch's labels (once in) put it significantly below the estimated rule's floor / max_drop."""
    rep = cache.performance(champ, i, trig.metric, reference, trig.floor, trig.alpha)
    return rep.below_floor or (trig.max_drop is not None and rep.significant_drop(trig.max_drop))


def evaluate(
    cache: ReplayCache,
    spec: ModelSpec,
    trig: EstimatedPerformanceTrigger,
    champ: Fitted,
    i: int,
    *,
    prior: int,
    label_delay: int,
    performance_fired: bool,
) -> tuple[Decision | None, int, dict[str, Any]]:
    """The estimated rule on batch i: (decision or None without a calibrator, new streak, record fields)."""
    cal = calibrator(cache, spec, champ)
    if cal is None:
        return None, 0, {}
    lo, hi = cache.replay.bounds[i]
    verdict = step(cal, cache.scores(champ, lo, hi), trig, prior=prior, seed=i)
    est = verdict.estimate
    realised = cache.metric(champ, i, trig.metric)
    early = (
        verdict.degraded
        and label_delay > 0
        and not performance_fired
        and _really_degraded(cache, champ, i, trig, verdict.reference)
    )
    fields = {
        "estimate": finite_or_none(est.value) if est.value is not None else None,
        "estimate_low": est.low,
        "estimate_high": est.high,
        "estimate_realised": realised,
        "estimated_degraded": verdict.batch_degraded,
        "estimate_fired": verdict.degraded,
        "estimate_early": early,
    }
    decision = Decision(retrain=verdict.degraded, reason="estimated", detail="; ".join(verdict.reasons))
    return decision, verdict.streak, fields


def summary(records: Sequence[BatchRecord], trig: EstimatedPerformanceTrigger | None) -> dict[str, Any]:
    """PolicyResult fields: the estimate's mean absolute error vs the realised metric, and its firings."""
    pairs = [
        (r.estimate, r.estimate_realised)
        for r in records
        if r.estimate is not None and r.estimate_realised is not None
    ]
    if trig is None:
        return {}
    errors = [abs(e - m) for e, m in pairs]
    return {
        "estimate_metric": trig.metric,
        "estimate_mae": mean_or_none(list(errors)) if errors else None,
        "estimate_bias": float(np.mean([e - m for e, m in pairs])) if pairs else None,
        "estimate_batches": len(pairs),
        "estimate_fired": [r.batch for r in records if r.estimate_fired],
        "estimate_early": [r.batch for r in records if r.estimate_early],
    }


def markdown(policies: Sequence[Any]) -> list[str]:
    """Report lines for the policies with an estimated trigger (none: no lines)."""
    rows = [p for p in policies if p.estimate_batches]
    if not rows:
        return []
    lines = [
        "",
        "**Label-free estimate (CBPE)** of each batch, at arrival, vs the realised metric once labels are in:",
        "",
        "| policy | metric | batches | MAE | bias | fired at | fired early (labels not in yet) |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in rows:
        lines.append(
            f"| {p.name} | {p.estimate_metric} | {p.estimate_batches} | {_f(p.estimate_mae)} | "
            f"{_f(p.estimate_bias, '+.4f')} | {_list(p.estimate_fired)} | {_list(p.estimate_early)} |"
        )
    return lines


def _f(v: float | None, spec: str = ".4f") -> str:
    return "-" if v is None else format(v, spec)


def _list(batches: list[int]) -> str:
    return ", ".join(map(str, batches)) or "-"


def text_lines(policies: Sequence[Mapping[str, Any]]) -> list[str]:
    """The CLI's lines (from the JSON result): one per policy with an estimated trigger."""
    out = []
    for p in policies:
        if not p.get("estimate_batches"):
            continue
        out.append(
            f"estimate ({p['estimate_metric']}): {p['name']} MAE {_f(p['estimate_mae'])} vs the realised metric "
            f"over {p['estimate_batches']} batches (bias {_f(p['estimate_bias'], '+.4f')}); fired at "
            f"[{_list(p['estimate_fired'])}], early (labels not in yet) at [{_list(p['estimate_early'])}]"
        )
    return out
