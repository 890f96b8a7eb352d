"""The one registry of Evergreen event names, the event resource, and pure payload builders.

Every decision Evergreen takes is a Prefect event on the resource `evergreen.model.<name>`;
automations and the demo match these names, so they are part of the public interface.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type hints only: importing the gate costs every event emitter numpy and pandas
    from evergreen.gate import GateDecision
    from evergreen.policy import Decision


class Event(StrEnum):
    """Every event name Evergreen emits (the values are the wire names)."""

    DATA_INGESTED = "evergreen.data.ingested"
    DATA_REJECTED = "evergreen.data.rejected"
    LABELS_INGESTED = "evergreen.labels.ingested"
    LABELS_REQUESTED = "evergreen.labels.requested"  # flows/active.py (issue 12)
    DRIFT_MEASURED = "evergreen.drift.measured"
    DRIFT_DETECTED = "evergreen.drift.detected"
    PERFORMANCE_DEGRADED = "evergreen.performance.degraded"
    RETRAIN_SKIPPED = "evergreen.retrain.skipped"
    MODEL_REGISTERED = "evergreen.model.registered"
    MODEL_PROMOTED = "evergreen.model.promoted"
    MODEL_REJECTED = "evergreen.model.rejected"
    MODEL_ROLLED_BACK = "evergreen.model.rolled-back"
    RETRAIN_FAILED = "evergreen.retrain.failed"
    PERFORMANCE_ESTIMATED = "evergreen.performance.estimated"
    SHADOW_STARTED = "evergreen.shadow.started"
    SHADOW_SCORED = "evergreen.shadow.scored"
    SHADOW_PROMOTED = "evergreen.shadow.promoted"
    SHADOW_RETIRED = "evergreen.shadow.retired"
    APPROVAL_REQUESTED = "evergreen.approval.requested"
    APPROVAL_DECIDED = "evergreen.approval.decided"
    CHAMPION_WATCHED = "evergreen.champion.watched"
    CHAMPION_REGRESSED = "evergreen.champion.regressed"


EVENT_PREFIX = "evergreen."
# Triggers cannot compare payload numbers, so the volume verdict travels as a resource label.
VOLUME_LABEL = "evergreen.volume-threshold-met"
# ... and so does the estimated-performance verdict (triggers.estimated fired).
ESTIMATE_LABEL = "evergreen.estimate-degraded"


def resource_id(model: str) -> str:
    """The Prefect resource id every event of `model` is emitted on."""
    return f"evergreen.model.{model}"


def resource(model: str, labels: dict[str, str] | None = None) -> dict[str, str]:
    """The event resource. Extra labels let triggers `match:` on facts (payloads cannot be matched)."""
    return {"prefect.resource.id": resource_id(model), "prefect.resource.name": model, **(labels or {})}


# Payload builders: the flows hand in what they decided; these fix each event's keys in one place
# (automation templates and the demo read them). `model` is added by the emitter.


def retrain_skipped(
    decision: Decision, requested_reason: str, trigger_event_id: str | None
) -> dict[str, Any]:
    """`evergreen.retrain.skipped`: the policy (e.g. cooldown) said no."""
    return {
        "reason": decision.reason,
        "detail": decision.detail,
        "requested_reason": requested_reason,
        "trigger_event_id": trigger_event_id or "",
    }


def model_verdict(
    *,
    version: str,
    reason: str,
    trigger_event_id: str | None,
    data_version: str,
    verdict: GateDecision,
    champion_version: str | None,
    previous_champion: str | None,
) -> dict[str, Any]:
    """`evergreen.model.registered` and `.promoted`/`.rejected`: the gate's verdict on a new version."""
    return {
        "version": version,
        "reason": reason,
        "trigger_event_id": trigger_event_id or "",
        "data_version": data_version,
        "metric": verdict.metric,
        "challenger": verdict.challenger,
        "champion": verdict.champion,
        "ci_low": verdict.ci_low,
        "ci_high": verdict.ci_high,
        "passed": verdict.passed,
        "champion_version": champion_version or "",
        "previous_champion": previous_champion or "",
        "summary": verdict.summary,
    }


def verdict_event(passed: bool) -> Event:
    return Event.MODEL_PROMOTED if passed else Event.MODEL_REJECTED


def data_rejected(
    source: str, rows: int, quarantined_to: str, report: str, failures: list[str]
) -> dict[str, Any]:
    """`evergreen.data.rejected`: a batch failed validation and was quarantined."""
    return {
        "source": source,
        "rows": rows,
        "quarantined_to": quarantined_to,
        "report": report,
        "failures": failures,
    }


INGESTED_KEYS = (
    "model",
    "source",
    "rows",
    "data_version",
    "data_rev",
    "total_rows",
    "dataset_created",
    "new_rows_since_champion",
    "new_share",
    "volume_threshold_met",
)


def data_ingested(outcome: dict[str, Any], min_new_share: float) -> dict[str, Any]:
    """`evergreen.data.ingested`: the new data version and the volume rule's inputs and verdict."""
    return {**{k: outcome[k] for k in INGESTED_KEYS}, "volume_min_new_share": min_new_share}


def volume_labels(met: bool) -> dict[str, str]:
    """Resource labels of `evergreen.data.ingested` (triggers match labels, not payload numbers)."""
    return {VOLUME_LABEL: str(met).lower()}


def estimate_labels(degraded: bool) -> dict[str, str]:
    """Resource labels of `evergreen.performance.estimated`: whether the estimated trigger fired."""
    return {ESTIMATE_LABEL: str(degraded).lower()}


LABELS_INGESTED_KEYS = ("source", "labels", "data_version", "data_rev", "labelled_rows", "unlabelled_rows")


def labels_ingested(outcome: dict[str, Any]) -> dict[str, Any]:
    """`evergreen.labels.ingested`: delayed labels committed as a new data version of the model's dataset."""
    return {k: outcome[k] for k in LABELS_INGESTED_KEYS}


def approval_requested(
    *,
    version: str,
    flow_run_id: str,
    verdict: GateDecision,
    reason: str,
    borderline: bool,
    timeout_seconds: int,
) -> dict[str, Any]:
    """`evergreen.approval.requested`: a gate-passed version waits in a paused retrain for a person."""
    return {
        "version": version,
        "flow_run_id": flow_run_id,
        "reason": reason,
        "borderline": borderline,
        "timeout_seconds": timeout_seconds,
        "metric": verdict.metric,
        "challenger": verdict.challenger,
        "champion": verdict.champion,
        "champion_version": verdict.champion_version or "",
        "ci_low": verdict.ci_low,
        "ci_high": verdict.ci_high,
        "summary": verdict.summary,
    }


def approval_decided(
    *, version: str, flow_run_id: str, approved: bool, approver: str, comment: str, timed_out: bool
) -> dict[str, Any]:
    """`evergreen.approval.decided`: the person's answer (or the timeout's reject) on a paused retrain."""
    return {
        "version": version,
        "flow_run_id": flow_run_id,
        "approved": approved,
        "decision": "approved" if approved else "rejected",
        "approver": approver,
        "comment": comment,
        "timed_out": timed_out,
    }
