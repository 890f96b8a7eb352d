"""The volume trigger as production's ingest applies it, through the same rule the backtester replays.

Inputs are the ones the backtester uses: rows that arrived after the champion's data, and the rows
the champion was trained on. With no champion there is nothing to compare against, and
`policy.volume_check` treats a zero denominator as "enough new data" (retrain).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel

from evergreen.policy import Decision, volume_check
from evergreen.spec import ModelSpec


class VolumeInputs(BaseModel):
    """What the volume rule compares: new rows since the champion's data vs its training rows."""

    new_rows: int
    champion_rows: int | None  # None: no champion (or one registered without lineage tags)

    @property
    def share(self) -> float | None:
        return self.new_rows / self.champion_rows if self.champion_rows else None


def volume_inputs(total_rows: int, champion_tags: Mapping[str, str] | None) -> VolumeInputs:
    """Read the rule's inputs from the dataset's row count and the champion's lineage tags."""
    if not champion_tags or "data_rows" not in champion_tags or "train_rows" not in champion_tags:
        return VolumeInputs(new_rows=total_rows, champion_rows=None)
    return VolumeInputs(
        new_rows=total_rows - int(champion_tags["data_rows"]), champion_rows=int(champion_tags["train_rows"])
    )


def volume_decision(new_rows: int, champion_rows: int | None, spec: ModelSpec) -> Decision:
    """Does this much new data call for a retrain? `policy.volume_check`, as the backtester calls it."""
    trigger = spec.triggers.volume
    if not trigger.enabled:
        return Decision(retrain=False, reason="volume", detail="volume trigger disabled")
    return volume_check(new_rows, champion_rows or 0, trigger.min_new_share)
