"""Loading a model's spec (models/<name>.yaml) as a task, so each flow run shows which spec it used."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from evergreen.settings import get_settings
from evergreen.spec import ModelSpec, load_spec


@task(cache_policy=NO_CACHE)
def load_model_spec(model: str, overrides: dict[str, Any] | None = None) -> ModelSpec:
    spec = load_spec(model, get_settings().models_dir)
    return spec.with_overrides(overrides) if overrides else spec
