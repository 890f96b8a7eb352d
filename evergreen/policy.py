"""Should we retrain? One Decision type shared by the retrain flow, the monitor and the backtester."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from pydantic import BaseModel


class Decision(BaseModel):
    """A yes/no with the reason that is recorded (event payload, tag or backtest row)."""

    retrain: bool
    reason: str
    detail: str = ""


def cooldown_check(
    last_promotion: datetime | None,
    now: datetime,
    cooldown: str | None,
    *,
    force: bool = False,
    reason: str = "manual",
) -> Decision:
    """Skip a retrain that comes too soon after the last promotion, unless forced.

    This is the layer that survives `prefect deploy` recreating automations, since it reads the
    registry rather than automation state.
    """
    if force:
        return Decision(retrain=True, reason=reason, detail="forced: cooldown not checked")
    if cooldown is None or last_promotion is None:
        return Decision(retrain=True, reason=reason, detail="no cooldown applies")
    elapsed = pd.Timestamp(now) - pd.Timestamp(last_promotion)
    window = pd.Timedelta(cooldown)
    if elapsed < window:
        return Decision(
            retrain=False,
            reason="cooldown",
            detail=f"last promotion {elapsed.total_seconds():.0f}s ago, inside cooldown {cooldown}",
        )
    return Decision(
        retrain=True, reason=reason, detail=f"last promotion {elapsed} ago, cooldown {cooldown} elapsed"
    )


# Trigger rules as Decisions. The monitor and the backtester both turn their measurements into these,
# so a backtest's "why did it retrain here" reads the same as production's event payloads.


def never() -> Decision:
    return Decision(retrain=False, reason="never", detail="policy never retrains")


def schedule_check(batches_since_retrain: int, every: int) -> Decision:
    """Retrain once `every` batches have been scored since the last retrain (or since the start)."""
    if every < 1:
        raise ValueError("every must be at least 1")
    due = batches_since_retrain >= every
    return Decision(
        retrain=due,
        reason="schedule",
        detail=f"{batches_since_retrain} batch(es) since the last retrain, every {every}",
    )


def volume_check(new_rows: int, champion_rows: int, min_new_share: float) -> Decision:
    """Retrain when the rows that arrived after the champion's data reach `min_new_share` of its training rows."""
    share = new_rows / champion_rows if champion_rows > 0 else float("inf")
    return Decision(
        retrain=share >= min_new_share,
        reason="volume",
        detail=f"{new_rows} new rows = {share:.2f} of the champion's {champion_rows} (min {min_new_share})",
    )


def drift_check(dataset_drift: bool, summary: str, drift_score: float | None = None) -> Decision:
    """A drift report's verdict as a Decision (see evergreen.drift.measure_drift)."""
    score = "" if drift_score is None else f"max PSI {drift_score:.3f}; "
    return Decision(retrain=dataset_drift, reason="drift", detail=f"{score}{summary}")


def performance_check(degraded: bool, summary: str) -> Decision:
    """A performance-trigger verdict as a Decision (see evergreen.performance.evaluate_trigger)."""
    return Decision(retrain=degraded, reason="performance", detail=summary)


def combine(decisions: list[Decision]) -> Decision:
    """Retrain if any rule fires. The reason is the first firing rule's, so list rules by priority
    (e.g. performance, drift, volume, then a schedule fallback); the detail names every rule that fired."""
    fired = [d for d in decisions if d.retrain]
    if not fired:
        if not decisions:
            return never()
        return Decision(
            retrain=False, reason="no-trigger", detail="; ".join(f"{d.reason}: {d.detail}" for d in decisions)
        )
    first = fired[0]
    others = [d.reason for d in fired[1:]]
    extra = f" (also: {', '.join(others)})" if others else ""
    return Decision(retrain=True, reason=first.reason, detail=f"{first.detail}{extra}")
