"""What every part of a model spec shares: strict models, the one error type, durations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict


class SpecError(ValueError):
    """A spec file that cannot be used; the message names the key and the problem."""


def read_yaml(path: Path, what: str, error: type[ValueError]) -> Any:
    """The parsed YAML file `path`; `error` names `what` when the file is missing or is not YAML."""
    import yaml

    if not path.is_file():
        raise error(f"{what} not found: {path}")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise error(f"invalid {what} {path}: not valid YAML: {exc}") from None


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
