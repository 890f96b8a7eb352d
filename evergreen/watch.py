"""Watch after a promotion (promotion.watch_batches K > 0): is the new champion worse than the one it replaced?

For the first K labelled batches after a promotion, the monitor scores the new champion and the previous
one on the same rows (evergreen/paired.py). After each batch the accumulated paired test is checked:
the new champion has regressed when it is significantly worse (p_worse < alpha / K, a Bonferroni
correction because the test looks up to K times) on at least `min_rows` paired rows. A regression is
announced once (`evergreen.champion.regressed`); the rollback automation then restores the previous
champion. After K batches without one, the watch is over.

Not watched: a champion with no previous one, and a champion restored by a rollback (`rolled_back_from`):
the watch belongs to a promotion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from evergreen.paired import PairedBatch, PairedTest, fmt_p, paired_test

TAG_PREFIX = "watch.batch"
REGRESSED_TAG = "watch_regressed"

Status = Literal["watching", "regressed", "passed"]


class WatchDecision(BaseModel):
    """The watch after the latest batch."""

    model_config = ConfigDict(frozen=True)

    status: Status
    batches: int
    watch_batches: int
    alpha: float  # the spec's alpha
    alpha_per_look: float  # alpha / watch_batches
    min_rows: int
    test: PairedTest
    summary: str


def previous_version(tags: Mapping[str, str]) -> str | None:
    """The champion this one replaced, from its promotion record (None: nothing to compare against)."""
    return tags.get("replaced_version") or None


def is_due(tags: Mapping[str, str], watch_batches: int, batches: Sequence[PairedBatch]) -> bool:
    """Whether this champion is still being watched: enabled, promoted over another, not restored by
    a rollback, not already regressed, and fewer than K batches watched."""
    return (
        watch_batches > 0
        and previous_version(tags) is not None
        and not tags.get("rolled_back_from")
        and tags.get(REGRESSED_TAG) != "true"
        and len(batches) < watch_batches
    )


def decide(
    batches: Sequence[PairedBatch], *, watch_batches: int, alpha: float, min_rows: int
) -> WatchDecision:
    """The watch rule over the batches watched so far (d = new champion loss - previous champion loss)."""
    test = paired_test(batches)
    per_look = alpha / max(watch_batches, 1)

    def made(status: Status, summary: str) -> WatchDecision:
        return WatchDecision(
            status=status, batches=len(batches), watch_batches=watch_batches, alpha=alpha,
            alpha_per_look=per_look, min_rows=min_rows, test=test, summary=summary,
        )  # fmt: skip

    numbers = (
        ""
        if test.n == 0 or test.candidate_loss is None or test.reference_loss is None
        else f"; mean loss new {test.candidate_loss:.4f} vs previous {test.reference_loss:.4f} on {test.n} rows"
    )
    if test.n >= min_rows and test.p_worse < per_look:
        why = f"new champion significantly worse (p_worse {fmt_p(test.p_worse)} < {per_look:.3g})"
        return made("regressed", f"{why}{numbers}")
    if len(batches) >= watch_batches:
        return made("passed", f"watched {len(batches)} batches: no regression{numbers}")
    return made("watching", f"watching: {len(batches)} of {watch_batches} batches{numbers}")
