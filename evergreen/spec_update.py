"""Warm-start updates: continue the champion with a few trees on the newest rows (LightGBM `init_model`)."""

from __future__ import annotations

from pydantic import Field, field_validator

from evergreen.spec_base import _check_duration, _Strict


class Update(_Strict):
    """`training.update`: cheap updates between full refits; absent means every retrain is a full fit."""

    trees: int = Field(default=10, ge=1, description="Trees added to the champion per update.")
    window: str = Field(default="4W", description="The update fits on this newest period only.")
    refit_every: int = Field(default=8, ge=1, description="A full refit after this many updates in a row.")
    refit_on_drift: bool = Field(default=True, description="A drift-triggered retrain is a full refit.")
    learning_rate: float | None = Field(
        default=None, gt=0, description="Learning rate of the added trees; absent: the champion's own."
    )

    _dur = field_validator("window")(classmethod(lambda cls, v: _check_duration(v)))
