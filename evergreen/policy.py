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
    return Decision(retrain=True, reason=reason, detail=f"last promotion {elapsed} ago, cooldown {cooldown} elapsed")
