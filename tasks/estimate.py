"""The monitor's estimate step: the champion's CBPE estimate on the batch, its streak, its event.

The calibrator is the `calibrator.json` artifact of the champion's run (tasks/registry.py stores it
with every classifier version). The run of degraded estimates lives on the champion's version as tags
(`est_degraded_streak`, `est_last_batch`, ...), as the performance streak does, so it survives across
monitor runs and restarts from zero with a new champion. The rule is evergreen.estimate_trigger.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from adapters import mlflow_registry as model_registry
from evergreen import events
from evergreen.estimate import Calibrator
from evergreen.estimate_trigger import EstimateVerdict, payload, step
from evergreen.events import Event
from evergreen.settings import get_settings
from evergreen.spec import ModelSpec
from tasks.announce import emit_event

STREAK_TAG = "est_degraded_streak"
LAST_BATCH_TAG = "est_last_batch"
LAST_VALUE_TAG = "est_last_value"
UPDATED_TAG = "est_updated_at"


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def load_calibrator(champ: model_registry.Champion) -> Calibrator | None:
    """The champion's calibrator, or None for a version registered without one (older, or regression)."""
    path = champ.tags.get("calibrator")
    if not path:
        return None
    return Calibrator.model_validate_json(
        model_registry.load_artifact_text(get_settings(), champ.run_id, path)
    )


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def save_estimate_streak(model: str, version: str, verdict: EstimateVerdict) -> None:
    """Store the run of degraded estimates on the champion's version (idempotent tags)."""
    value = verdict.estimate.value
    tags = dict.fromkeys((STREAK_TAG, LAST_BATCH_TAG, LAST_VALUE_TAG, UPDATED_TAG), "")
    tags.update({STREAK_TAG: str(verdict.streak), LAST_BATCH_TAG: verdict.last_batch})
    if value is not None:
        tags[LAST_VALUE_TAG] = f"{value:.6f}"
    tags[UPDATED_TAG] = datetime.now(UTC).isoformat()
    model_registry.tag_version(get_settings(), model, version, tags)


def estimate_and_announce(
    spec: ModelSpec,
    champ: model_registry.Champion,
    scores: np.ndarray | None,
    *,
    batch_key: str,
    context: dict[str, Any],
) -> tuple[dict[str, Any], str] | None:
    """With `triggers.estimated` enabled: estimate, persist the streak, emit `performance.estimated`.

    Returns (payload, event id), or None when there is nothing to estimate (trigger disabled, the
    batch was not scored, or the champion has no calibrator).
    """
    trig = spec.triggers.estimated
    if not trig.enabled or scores is None or len(scores) == 0:
        return None
    cal = load_calibrator(champ)
    if cal is None:
        get_run_logger().warning(
            "no performance estimate: champion v%s has no calibrator (registered before CBPE); retrain to add one",
            champ.version,
        )
        return None
    prior = int(champ.tags.get(STREAK_TAG, "0") or 0)
    verdict = step(
        cal, scores, trig, prior=prior, prior_batch=champ.tags.get(LAST_BATCH_TAG, ""), batch_key=batch_key
    )
    if verdict.counted:
        save_estimate_streak(spec.name, champ.version, verdict)
    body = payload(verdict, context)
    event_id = emit_event(
        Event.PERFORMANCE_ESTIMATED.value, spec.name, body, events.estimate_labels(verdict.degraded)
    )
    get_run_logger().info("estimate %s v%s: %s", spec.name, champ.version, body["summary"])
    return body, event_id
