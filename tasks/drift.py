"""The monitor's drift inputs beyond the profile: the champion's reference sample (multivariate drift).

The sample is the `reference_sample.parquet` artifact of the champion's run (tasks/registry.py stores
it with every version, named by the `reference_sample` tag). It is only read when
`triggers.drift.multivariate.enabled`; a version registered before it existed has none, and the
drift report then says so.
"""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from adapters import mlflow_registry as model_registry
from evergreen.drift.multivariate import read_sample
from evergreen.settings import get_settings
from evergreen.spec import ModelSpec


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def load_reference_sample(spec: ModelSpec, champ: model_registry.Champion) -> pd.DataFrame | None:
    """The champion's reference sample when the multivariate detector is on; else None."""
    if not spec.triggers.drift.multivariate.enabled:
        return None
    path = champ.tags.get("reference_sample")
    if not path:
        get_run_logger().warning(
            "no multivariate drift: champion v%s has no reference sample (registered before it); retrain to add one",
            champ.version,
        )
        return None
    return read_sample(model_registry.load_artifact_bytes(get_settings(), champ.run_id, path))
