"""A synthetic reference frame (normal, lognormal, integer and categorical columns) and its profile."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evergreen.drift import ReferenceProfile, build_profile

CATS = ["a", "b", "c", "d", "e"]
CAT_P = [0.4, 0.3, 0.15, 0.1, 0.05]


def make_frame(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1.0, n),
            "y": rng.lognormal(0.0, 1.0, n),
            "k": rng.integers(0, 5, n),
            "c": rng.choice(CATS, n, p=CAT_P),
        }
    )


def reference_frame() -> pd.DataFrame:
    return make_frame(np.random.default_rng(42), 20_000)


def reference_profile(reference: pd.DataFrame) -> ReferenceProfile:
    scores = np.random.default_rng(7).beta(2, 5, len(reference))
    return build_profile(
        reference,
        ["x", "y", "k"],
        ["c"],
        labels=(reference["x"] > 0).to_numpy(),
        scores=scores,
        metrics={"roc_auc": 0.81},
    )
