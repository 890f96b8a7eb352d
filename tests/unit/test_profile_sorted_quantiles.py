"""evergreen.drift.profile.sorted_quantiles reads np.quantile's inverted-CDF values off a sorted array."""

from __future__ import annotations

import numpy as np
import pytest

from evergreen.drift.profile import sorted_quantiles


@pytest.mark.parametrize("n", [1, 2, 3, 7, 99, 100, 101, 4097, 250_001])
@pytest.mark.parametrize("bins", [2, 3, 10, 100, 1000])
def test_equal_to_numpy_inverted_cdf(n: int, bins: int) -> None:
    rng = np.random.default_rng(n * bins)
    probs = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    for values in (rng.random(n), np.round(rng.random(n) * 5)):  # continuous, and heavily tied
        ordered = np.sort(values)
        np.testing.assert_array_equal(
            sorted_quantiles(ordered, probs), np.quantile(ordered, probs, method="inverted_cdf")
        )
