"""Watch after a promotion (promotion.watch_batches; docs/release.md): the monitor's comparison of the new
champion with the one it replaced, on the same labelled rows, for K batches.

Each batch's paired sums are a tag on the champion version (`watch.batch.<n>`; a batch counts once);
every watched batch emits `evergreen.champion.watched`. When evergreen.watch says the new champion is
significantly worse, `evergreen.champion.regressed` is emitted (then the version is tagged
`watch_regressed=true`, so it is announced once) and the rendered automation
`<model>-rollback-on-regression` runs `rollback/<model>` with the payload's versions; the rollback flow
restores the previous champion and writes the audit entry (actor: the automation).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from adapters import mlflow_registry as registry
from evergreen import watch as rules
from evergreen.events import Event
from evergreen.paired import batch_tag, batches_from_tags, loss_name, paired_batch
from evergreen.settings import get_settings
from evergreen.spec import ModelSpec
from tasks.announce import emit_event
from tasks.shadow import labelled_losses, tag


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def find_version(model: str, version: str) -> registry.Champion | None:
    """A registered version as a scoreable handle, or None when it was deleted."""
    from mlflow.exceptions import MlflowException

    try:
        mv = registry.client(get_settings()).get_model_version(model, version)
    except MlflowException:
        return None
    return registry.Champion(version=str(mv.version), run_id=mv.run_id, tags=dict(mv.tags))


def rollback_reason(version: str, previous: str, summary: str) -> str:
    """The reason the rollback automation passes on (and the audit entry records)."""
    return f"watch: champion v{version} regressed against v{previous}: {summary}"


def watch_batch(
    spec: ModelSpec,
    champ: registry.Champion,
    frame: pd.DataFrame,
    scores: np.ndarray | None,
    *,
    batch_key: str,
    context: dict[str, Any],
) -> dict[str, Any] | None:
    """Compare the champion with the one it replaced on this batch; the watched payload, or None."""
    model, log, p = spec.name, get_run_logger(), spec.promotion
    stored = batches_from_tags(rules.TAG_PREFIX, champ.tags)
    if not rules.is_due(champ.tags, p.watch_batches, stored):
        return None
    previous = rules.previous_version(champ.tags) or ""
    prev = find_version(model, previous)
    if prev is None:
        log.warning("watch: previous champion v%s of %s is gone; nothing to compare", previous, model)
        return None
    losses = labelled_losses(spec, frame, scores, prev)
    if losses is None:
        log.info("watch %s v%s: no labelled rows in this batch", model, champ.version)
        return None
    new, old = losses
    counted = batch_key not in {b.key for b in stored}
    if counted:
        batch = paired_batch(batch_key, previous, old, new)
        tag(model, champ.version, batch_tag(rules.TAG_PREFIX, len(stored) + 1, batch))
        stored.append(batch)
    d = rules.decide(stored, watch_batches=p.watch_batches, alpha=p.alpha, min_rows=p.min_rows)
    t = d.test
    payload = {
        **context, "version": champ.version, "previous_version": previous, "counted": counted,
        "status": d.status, "summary": d.summary, "batches": d.batches, "watch_batches": d.watch_batches,
        "batch_rows": int(len(new)), "rows": t.n, "loss": loss_name(spec.metric),
        "champion_loss": t.candidate_loss, "previous_loss": t.reference_loss, "mean_diff": t.mean_diff,
        "p_worse": t.p_worse, "alpha": d.alpha, "alpha_per_look": d.alpha_per_look, "min_rows": d.min_rows,
    }  # fmt: skip
    emit_event(Event.CHAMPION_WATCHED, model, payload)
    log.info("watch %s v%s vs v%s: %s", model, champ.version, previous, d.summary)
    now = datetime.now(UTC).isoformat()
    if d.status == "regressed":
        body = {**payload, "reason": rollback_reason(champ.version, previous, d.summary)}
        # announce first, then mark: a run killed in between announces again (the automation's
        # `within` and the rollback's from_version check make that harmless), never not at all
        payload["regressed_event_id"] = emit_event(Event.CHAMPION_REGRESSED, model, body)
        tag(model, champ.version, {rules.REGRESSED_TAG: "true", "watch_regressed_at": now,
                                   "watch_summary": d.summary[:4000]})  # fmt: skip
    elif d.status == "passed":
        tag(model, champ.version, {"watch_passed_at": now, "watch_summary": d.summary[:4000]})
    return payload
