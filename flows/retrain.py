"""The retrain flow, step by step as in DESIGN.md's loop:

check policy (cooldown) -> pull -> validate -> train -> score -> gate -> register -> promote -> announce.

Every trained model is registered with its lineage; only a passing gate moves the `champion` alias.
Any failure before the alias move leaves the registry and the champion exactly as they were.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from prefect import flow, get_run_logger
from pydantic import BaseModel

from evergreen import events, gate, training
from evergreen.artifacts import artifact_key
from evergreen.events import Event
from evergreen.gate import GateDecision
from evergreen.lineage import gate_artifact
from tasks.announce import emit_event, publish_markdown
from tasks.data import ValidationFailed, pull_data, validate_training_set
from tasks.registry import (
    check_cooldown,
    describe_lineage,
    log_candidate,
    promote_or_reject,
    register_version,
)
from tasks.spec import load_model_spec
from tasks.training import gate_candidate, refit_if_passed, score_candidate, train_challenger

__all__ = ["Reason", "RetrainOutcome", "ValidationFailed", "retrain"]

Reason = Literal["manual", "schedule", "drift", "performance", "volume", "backfill"]


class RetrainOutcome(BaseModel):
    """What `evergreen retrain --json` prints and the flow returns."""

    model: str
    status: Literal["promoted", "rejected", "skipped"]
    reason: str
    version: str | None = None
    champion_version: str | None = None
    previous_champion: str | None = None
    decision: dict[str, Any] | None = None
    metrics: dict[str, float | None] = {}
    data_version: str | None = None
    run_id: str | None = None
    detail: str = ""
    # Coarse timings for benchmarks/retrain.py; per-step durations are in Prefect's task runs.
    seconds: dict[str, float] = {}


@flow(name="retrain", log_prints=False)
def retrain(
    model: str,
    reason: Reason = "manual",
    data_rev: str | None = None,
    trigger_event_id: str | None = None,
    force: bool = False,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Retrain `model` on a pinned data version and promote it only if it passes the gate.

    Args:
        model: name of `models/<model>.yaml`.
        reason: why this run happened; recorded on the model version and in events.
        data_rev: registry git rev to train on (default: the registry's HEAD).
        trigger_event_id: id of the Prefect event that started this run, if any.
        force: train even inside the cooldown.
        overrides: dotted spec keys to override for this run, e.g. {"training.window.kind": "all"}.
    """
    started = time.perf_counter()
    spec = load_model_spec(model, overrides)
    policy = check_cooldown(spec, force=force, reason=reason)
    if not policy.retrain:
        get_run_logger().info("skipping retrain of %s: %s", model, policy.detail)
        emit_event(Event.RETRAIN_SKIPPED, model, events.retrain_skipped(policy, reason, trigger_event_id))
        return RetrainOutcome(
            model=model, status="skipped", reason=policy.reason, detail=policy.detail
        ).model_dump()

    frame, data = pull_data(spec, data_rev)
    checked = validate_training_set(frame, spec, data.id)
    split = training.split(frame, spec)
    challenger = train_challenger(spec, split)
    scored = score_candidate(spec, challenger.pipeline, split.holdout)
    verdict = gate_candidate(spec, scored)
    trained = refit_if_passed(spec, frame, challenger, verdict.passed)
    tags = describe_lineage(spec, data, trained, split.holdout, checked, verdict, reason, trigger_event_id)
    logged = log_candidate(spec, trained, split.holdout, scored, verdict, checked, tags)
    version = register_version(model, logged, tags, f"{reason}: {verdict.summary}")
    previous = scored.champion_version
    status = promote_or_reject(model, version, verdict, previous, reason)
    current = version if verdict.passed else previous
    _announce(model, reason, trigger_event_id, data.id, version, verdict, current, previous, tags, status)

    return RetrainOutcome(
        model=model, status=status, reason=reason, version=version, champion_version=current,
        previous_champion=previous, decision=verdict.model_dump(), data_version=data.id, run_id=logged.run_id,
        metrics={**scored.holdout_metrics, f"champion_{spec.metric}": verdict.champion,
                 "latency_p95_ms": scored.latency_p95_ms, "train_seconds": trained.seconds},
        detail=verdict.summary, seconds={"train": round(trained.seconds, 3), "total": round(time.perf_counter() - started, 3)},
    ).model_dump()  # fmt: skip


def _announce(
    model: str,
    reason: str,
    trigger_event_id: str | None,
    data_version: str,
    version: str,
    verdict: GateDecision,
    current: str | None,
    previous: str | None,
    tags: dict[str, str],
    status: str,
) -> None:
    """Announce: `registered`, then `promoted` or `rejected`, then the gate report artifact."""
    payload = events.model_verdict(
        version=version,
        reason=reason,
        trigger_event_id=trigger_event_id,
        data_version=data_version,
        verdict=verdict,
        champion_version=current,
        previous_champion=previous,
    )
    emit_event(Event.MODEL_REGISTERED, model, payload)
    emit_event(events.verdict_event(verdict.passed), model, payload)
    report = gate.to_markdown(verdict, title=f"Gate report: {model} ({reason})")
    publish_markdown(
        artifact_key("gate", model), gate_artifact(report, version, tags), f"{model} v{version}: {status}"
    )
