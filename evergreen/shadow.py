"""The shadow decision (promotion.mode: shadow): after N labelled batches, promote the shadow or retire it.

A challenger that passed the gate gets the `shadow` alias; the monitor scores it and the champion on the
same labelled rows of each batch (evergreen/paired.py keeps the sums). The rule, once at least
`shadow_batches` batches and `min_rows` paired rows are in:

- retire when the shadow is significantly worse than the champion (one-sided paired test, p_worse < alpha);
- promote otherwise. The gate already showed the challenger is no worse than the tolerance on the
  hold-out; the shadow phase checks that on rows that arrived after it was trained, so "not significantly
  worse on live rows" confirms it, and "significantly better" is reported (p_better) but not required.

Before that: wait. Only batches paired against the current champion count (a champion that changed
under the shadow, e.g. by a rollback, restarts the count).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from evergreen.paired import PairedBatch, PairedTest, fmt_p, paired_test

TAG_PREFIX = "shadow.batch"
ALIAS = "shadow"

Verdict = Literal["wait", "promote", "retire"]


class ShadowDecision(BaseModel):
    """What the rule says after the latest batch."""

    model_config = ConfigDict(frozen=True)

    decision: Verdict
    batches: int  # batches counted (paired against the current champion)
    needed: int  # promotion.shadow_batches
    min_rows: int
    alpha: float
    test: PairedTest
    summary: str


def counted(batches: Sequence[PairedBatch], champion_version: str) -> list[PairedBatch]:
    """The batches paired against `champion_version` (the others were against an earlier champion)."""
    return [b for b in batches if b.reference_version == str(champion_version)]


def decide(
    batches: Sequence[PairedBatch], champion_version: str, *, needed: int, alpha: float, min_rows: int
) -> ShadowDecision:
    """The shadow rule over the stored batches (see the module docstring)."""
    mine = counted(batches, champion_version)
    test = paired_test(mine)

    def made(decision: Verdict, summary: str) -> ShadowDecision:
        return ShadowDecision(
            decision=decision, batches=len(mine), needed=needed, min_rows=min_rows, alpha=alpha,
            test=test, summary=summary,
        )  # fmt: skip

    numbers = _numbers(test)
    if len(mine) < needed:
        why = f"{len(mine)} of {needed} batches scored{numbers}"
        return made("wait", f"waiting: {why}")
    if test.n < min_rows:
        why = f"{test.n} paired rows < min_rows {min_rows}{numbers}"
        return made("wait", f"waiting: {why}")
    if test.p_worse < alpha:
        why = f"shadow significantly worse than champion v{champion_version} (p_worse {fmt_p(test.p_worse)} < {alpha})"
        return made("retire", f"{why}{numbers}")
    better = "better" if test.p_better < alpha else "not significantly worse"
    why = f"shadow {better} than champion v{champion_version} (p_worse {fmt_p(test.p_worse)} >= {alpha})"
    return made("promote", f"{why}{numbers}")


def _numbers(test: PairedTest) -> str:
    if test.n == 0 or test.reference_loss is None or test.candidate_loss is None:
        return ""
    return (
        f"; mean loss shadow {test.candidate_loss:.4f} vs champion {test.reference_loss:.4f} "
        f"on {test.n} rows in {test.batches} batches"
    )
