"""The release part of a model spec: what happens after the gate (shadow, approval, watch) and notifications."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from evergreen.spec_base import _check_duration, _Strict

NotifyOn = Literal[
    "promoted", "rejected", "rolled_back", "drift", "retrain_failed", "shadow_decided", "approval_requested"
]

DEFAULT_NOTIFY_ON: tuple[NotifyOn, ...] = ("promoted", "rejected", "rolled_back", "drift", "retrain_failed")


class Promotion(_Strict):
    """How a challenger that passed the gate becomes champion."""

    mode: Literal["direct", "shadow"] = Field(
        default="direct",
        description="direct: the gate moves `champion`; shadow: the gate moves `shadow`, the monitor decides.",
    )
    shadow_batches: int = Field(
        default=3, ge=1, description="shadow: labelled batches scored side by side before the decision."
    )
    approval: Literal["never", "borderline", "always"] = Field(
        default="never",
        description="borderline: pause for a person when the gate's interval straddles the tolerance.",
    )
    approval_timeout: str = Field(default="1h", description="A paused run with no answer is rejected.")
    watch_batches: int = Field(
        default=0, ge=0, description="After a promotion, compare with the previous champion for K batches."
    )
    alpha: float = Field(default=0.05, gt=0, lt=1, description="Significance of shadow and watch decisions.")
    min_rows: int = Field(default=100, ge=1, description="Fewer paired rows: no decision yet.")

    _dur = field_validator("approval_timeout")(classmethod(lambda cls, v: _check_duration(v)))


class Notifications(_Strict):
    """Prefect notification blocks that automations call on these events (rendered into prefect.yaml)."""

    block: str | None = Field(
        default=None, description="Name of a Prefect notification block (webhook, slack-webhook, email)."
    )
    on: list[NotifyOn] = Field(default_factory=lambda: list(DEFAULT_NOTIFY_ON))
