"""`training.engine`: where the LightGBM fit runs (this process, or a Dask cluster via lightgbm.dask)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from evergreen.spec_base import _Strict


class TrainingEngine(_Strict):
    """`local` fits in the flow's process; `dask` fits with lightgbm.dask on a Dask cluster; `auto`
    uses Dask when the training rows reach `dask_min_rows`. The fitted booster comes back as a plain
    LightGBM estimator in the same sklearn Pipeline, so scoring, logging, gating and serving are unchanged."""

    kind: Literal["local", "dask", "auto"] = "local"
    dask_min_rows: int = Field(
        default=1_000_000, ge=1, description="auto: Dask from this many training rows."
    )
    address: str | None = Field(
        default=None,
        description="Dask scheduler (tcp://host:8786); None: $EVERGREEN_DASK_ADDRESS, else a LocalCluster per fit.",
    )
    workers: int = Field(default=2, ge=1, description="LocalCluster worker processes (no address given).")

    def uses_dask(self, rows: int) -> bool:
        """Whether a fit on `rows` training rows runs on Dask."""
        return self.kind == "dask" or (self.kind == "auto" and rows >= self.dask_min_rows)
