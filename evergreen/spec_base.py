"""What every part of a model spec shares: strict models, the one error type, durations."""

from __future__ import annotations

import pandas as pd
from pydantic import BaseModel, ConfigDict


class SpecError(ValueError):
    """A spec file that cannot be used; the message names the key and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_duration(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        td = pd.Timedelta(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{value!r} is not a duration (try '7D', '6h', '4W')") from exc
    if td <= pd.Timedelta(0):
        raise ValueError(f"{value!r} must be a positive duration")
    return value
