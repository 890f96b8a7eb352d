"""Active learning (issue 12 part 2): which unlabelled rows to send for labelling, within a budget.

Pure functions over model scores (the form `evergreen.training.predict_scores` returns: positive-class
probabilities (n,) for binary, probabilities (n, K) for multiclass):

- `uncertainty`: entropy of the predicted distribution, or margin (1 - (p1 - p2), top two classes);
  higher means less sure;
- `budget_rows`: how many rows a period may still request, from a share of the batch or a row count,
  minus what the period already requested;
- `requested_in_period` / `request_size`: the spec's budget (`data.delayed_labels.request`): a share of
  each batch, capped by rows per period over all requests (read from the request ledger);
- `select`: the most uncertain rows (ties by row order), or a seeded random sample as the control arm.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

Strategy = Literal["entropy", "margin", "random"]
STRATEGIES: tuple[str, ...] = ("entropy", "margin", "random")


def _as_distribution(scores: np.ndarray) -> np.ndarray:
    p = np.asarray(scores, dtype=float)
    if p.ndim == 1:  # binary: positive-class probability
        p = np.column_stack([1.0 - p, p])
    return np.clip(p, 0.0, 1.0)


def uncertainty(scores: np.ndarray, method: Literal["entropy", "margin"] = "entropy") -> np.ndarray:
    """Per-row uncertainty in [0, 1] for entropy (normalised by log K) and margin."""
    p = _as_distribution(scores)
    if method == "entropy":
        with np.errstate(divide="ignore", invalid="ignore"):
            h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
        return h / np.log(p.shape[1])
    if method == "margin":
        top = np.sort(p, axis=1)[:, ::-1]
        return 1.0 - (top[:, 0] - top[:, 1])
    raise ValueError(f"unknown uncertainty method {method!r}: expected entropy or margin")


def budget_rows(
    batch_rows: int, share: float | None = None, *, rows: int | None = None, already_requested: int = 0
) -> int:
    """Rows this batch may request: `share` of the batch or `rows` per period, less what the period used."""
    if (share is None) == (rows is None):
        raise ValueError("give a budget share or a row count, not both or neither")
    if share is not None and not 0.0 < share <= 1.0:
        raise ValueError(f"budget share {share} is outside (0, 1]")
    cap = int(np.floor(share * batch_rows)) if share is not None else int(rows or 0)
    return max(0, min(batch_rows, cap - already_requested))


def requested_in_period(ledger: list[dict[str, Any]], now: pd.Timestamp, period: str) -> int:
    """Rows already requested within `period` before `now`, from the request ledger's entries
    (``{"at": ISO time, "requested": n}``, one per label request)."""
    since = now - pd.Timedelta(period)
    return sum(int(e.get("requested", 0)) for e in ledger if pd.Timestamp(e["at"]) > since)


def request_size(
    unlabelled: int, budget: float, rows_per_period: int | None = None, already_requested: int = 0
) -> int:
    """Rows one request may take: `budget` as a share of the batch (<= 1) or a row count (> 1), capped by
    what the period's row budget (`rows_per_period`, over all requests) has left."""
    k = budget_rows(unlabelled, budget) if budget <= 1 else budget_rows(unlabelled, rows=int(budget))
    if rows_per_period is None:
        return k
    return min(k, budget_rows(unlabelled, rows=rows_per_period, already_requested=already_requested))


def select(
    scores: np.ndarray, n: int, strategy: Strategy | str = "entropy", seed: int | np.random.Generator = 0
) -> np.ndarray:
    """Indices (into `scores`) of the `n` rows to label, in priority order.

    `seed` drives the random control: an int, or a Generator that a replay threads through its batches.
    """
    total = len(scores)
    n = max(0, min(int(n), total))
    if strategy == "random":
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return rng.choice(total, size=n, replace=False)
    if strategy not in ("entropy", "margin"):
        raise ValueError(f"unknown strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    u = uncertainty(scores, strategy)  # type: ignore[arg-type]
    # stable sort on -u: equal uncertainty keeps row order, so a selection is reproducible
    return np.argsort(-u, kind="stable")[:n]
