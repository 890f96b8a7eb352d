"""Label delay in the replay (policy `label_delay: D`, docs/backtest.md "Label delay").

With a delay of D batches, when batch i arrives only batches up to i - D carry labels (production's
`data.delayed_labels`: rows arrive, their labels D batches later). So at batch i:

- drift is measured on batch i itself (features need no labels);
- performance is measured on batch i - D, the newest batch whose labels are in, and only when the
  champion never trained on it;
- a retrain trains, holds out and gates on rows up to the end of batch i - D (the most recent LABELLED
  window; the warm-up batches count as labelled), and the volume rule counts labelled rows.

The champion's accuracy on every batch is still scored once the labels are in: that is the outcome being
compared. `delay_costs` pairs each delayed policy with the same policy at D = 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evergreen.backtest.replay import Replay

_IGNORED = ("name", "description", "label_delay")


def labelled_end(replay: Replay, i: int, delay: int) -> int:
    """Rows [0, end) are labelled when batch i arrives. The warm-up batches are history whose labels are
    all in when the replay goes live; each later batch's labels arrive `delay` batches after it."""
    j = max(i - delay, replay.warmup - 1)
    return replay.bounds[j][1] if j >= 0 else 0


def performance_batch(replay: Replay, i: int, delay: int, champion_data_end: int) -> int | None:
    """The batch whose performance can be measured at batch i, or None (no labelled batch is new to the
    champion yet: its labels were already in when the champion trained)."""
    j = i - delay
    if j < 0 or replay.bounds[j][0] < champion_data_end:
        return None
    return j


@dataclass(frozen=True)
class DelayCost:
    policy: str
    baseline: str
    label_delay: int
    mean_accuracy: float | None
    baseline_accuracy: float | None
    mean_metric: float | None
    baseline_metric: float | None
    retrains: int
    baseline_retrains: int

    @property
    def accuracy_cost(self) -> float | None:
        """Mean accuracy lost to the delay (baseline - delayed; positive: the delay costs accuracy)."""
        if self.mean_accuracy is None or self.baseline_accuracy is None:
            return None
        return self.baseline_accuracy - self.mean_accuracy

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "accuracy_cost": self.accuracy_cost}


def _shape(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in _IGNORED}


def _get(r: Any, key: str) -> Any:
    return r[key] if isinstance(r, Mapping) else getattr(r, key)


def delay_costs(results: Sequence[Any]) -> list[DelayCost]:
    """Each policy with label_delay > 0 beside the policy that is identical except for the delay (D = 0).

    `results` are PolicyResults (or their JSON dicts): name, config (the policy as written),
    mean_accuracy, mean_metric, retrains. Policies without such a twin are left out."""
    out = []
    for r in results:
        config = _get(r, "config")
        delay = int(config.get("label_delay") or 0)
        if delay == 0:
            continue
        twin = next(
            (
                b
                for b in results
                if not _get(b, "config").get("label_delay") and _shape(_get(b, "config")) == _shape(config)
            ),
            None,
        )
        if twin is not None:
            out.append(
                DelayCost(
                    _get(r, "name"),
                    _get(twin, "name"),
                    delay,
                    _get(r, "mean_accuracy"),
                    _get(twin, "mean_accuracy"),
                    _get(r, "mean_metric"),
                    _get(twin, "mean_metric"),
                    _get(r, "retrains"),
                    _get(twin, "retrains"),
                )  # fmt: skip
            )
    return out
