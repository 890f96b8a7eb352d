"""Notification automations rendered from each spec's ``notifications:`` (pure; no Prefect import).

Deployment triggers in prefect.yaml can only run their deployment (Prefect's
``DeploymentEventTrigger`` carries ``parameters``, not ``actions``), so a notification is a
standalone Prefect automation: an event trigger on the model's resource and one ``send-notification``
action that calls the spec's notification block. This module renders them as plain dicts in Prefect's
automation schema (``name``, ``trigger``, ``actions``); the block is named, not yet resolved to its
id. ``adapters/prefect_notify.py`` resolves the block and creates or updates the automations by name
(``evergreen notify apply``; ``evergreen up`` runs it beside the deploy).

One automation per model and notified kind: ``<model>-notify-<kind>`` (e.g. ``elec2-notify-promoted``),
tagged ``evergreen-notify`` so an apply can remove the ones a spec no longer asks for.
Messages are Jinja templates Prefect fills in from the event: every payload key is read with
``| default('')`` because a missing key would otherwise fail the action (docs/notifications.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evergreen.events import Event, resource_id
from evergreen.spec import ModelSpec
from evergreen.spec_release import NotifyOn

TAG = "evergreen-notify"
# What each `notifications.on` entry listens to.
NOTIFY_EVENTS: dict[NotifyOn, tuple[Event, ...]] = {
    "promoted": (Event.MODEL_PROMOTED,),
    "rejected": (Event.MODEL_REJECTED,),
    "rolled_back": (Event.MODEL_ROLLED_BACK,),
    "drift": (Event.DRIFT_DETECTED,),
    "retrain_failed": (Event.RETRAIN_FAILED,),
    "shadow_decided": (Event.SHADOW_PROMOTED, Event.SHADOW_RETIRED),
    "approval_requested": (Event.APPROVAL_REQUESTED,),
}

MODEL = "{{ event.resource.name }}"


def _p(key: str) -> str:
    """A payload field, empty when the event does not carry it."""
    return "{{ event.payload." + key + " | default('') }}"


# (subject, first lines of the body) per kind; every body ends with the same machine-readable footer.
MESSAGES: dict[NotifyOn, tuple[str, list[str]]] = {
    "promoted": (
        f"[evergreen] {MODEL}: v{_p('version')} promoted to champion",
        [
            f"{MODEL}: version {_p('version')} is the champion now (before: v{_p('previous_champion')}).",
            f"Why it was trained: {_p('reason')}. Data: {_p('data_version')}.",
            f"Gate ({_p('metric')}): {_p('summary')}",
        ],
    ),
    "rejected": (
        f"[evergreen] {MODEL}: v{_p('version')} rejected by the gate",
        [
            f"{MODEL}: version {_p('version')} failed the gate; the champion stays "
            f"v{_p('champion_version')}.",
            f"Why it was trained: {_p('reason')}. Data: {_p('data_version')}.",
            f"Gate ({_p('metric')}): {_p('summary')}",
        ],
    ),
    "rolled_back": (
        f"[evergreen] {MODEL}: champion rolled back to v{_p('to_version')}",
        [
            f"{MODEL}: the champion moved back from v{_p('from_version')} to v{_p('to_version')}.",
            f"Reason: {_p('reason')}.",
        ],
    ),
    "drift": (
        f"[evergreen] {MODEL}: drift detected",
        [
            f"{MODEL}: the newest batch drifted from champion v{_p('champion_version')}'s reference "
            f"(drift score {_p('drift_score')}).",
            "Drifted features: {{ event.payload.drifted_features | default([]) | join(', ') }}.",
            f"{_p('summary')}",
        ],
    ),
    "retrain_failed": (
        f"[evergreen] {MODEL}: retrain failed",
        [
            f"{MODEL}: a retrain (reason {_p('reason')}) failed: {_p('error_class')}: {_p('error')}",
            f"Flow run: {_p('flow_run_id')}. The champion and the registry are unchanged.",
        ],
    ),
    "shadow_decided": (
        f"[evergreen] {MODEL}: shadow v{_p('version')} "
        "{{ 'promoted' if event.event == 'evergreen.shadow.promoted' else 'retired' }}",
        [
            f"{MODEL}: the shadow version {_p('version')} was "
            "{{ 'promoted to champion' if event.event == 'evergreen.shadow.promoted' else 'retired' }} "
            f"after its side-by-side comparison with champion v{_p('champion_version')}.",
            f"Reason: {_p('reason')}. {_p('summary')}",
        ],
    ),
    "approval_requested": (
        f"[evergreen] {MODEL}: v{_p('version')} waits for approval",
        [
            f"{MODEL}: version {_p('version')} passed the gate and waits for a person's approval "
            f"(flow run {_p('flow_run_id')}).",
            "Approve or reject it in the Prefect UI (the paused run's form) or with `evergreen approve` "
            "(docs/release.md). No answer in time means rejected.",
            f"Gate ({_p('metric')}): {_p('summary')}",
        ],
    ),
}

FOOTER = [
    "",
    "event: {{ event.event }}",
    f"model: {MODEL}",
    f"version: {_p('version')}",
    "event_id: {{ event.id | string }}",
    "occurred: {{ event.occurred | string }}",
]


def automation_name(model: str, kind: str) -> str:
    return f"{model}-notify-{kind}"


def notification_automation(spec: ModelSpec, kind: NotifyOn) -> dict[str, Any]:
    """One automation (Prefect's schema) sending `kind` events of `spec`'s model to its block.

    The action names its block under ``block`` (the spec's value); the adapter swaps in
    ``block_document_id`` before it creates the automation.
    """
    subject, lines = MESSAGES[kind]
    events = [e.value for e in NOTIFY_EVENTS[kind]]
    return {
        "name": automation_name(spec.name, kind),
        "description": (
            f"Evergreen: notify {spec.notifications.block} on {' / '.join(events)} of {spec.name} "
            f"(models/{spec.name}.yaml notifications; `evergreen notify apply` keeps it in sync)."
        ),
        "enabled": True,
        "tags": [TAG],
        "trigger": {
            "type": "event",
            "match": {"prefect.resource.id": resource_id(spec.name)},
            "expect": events,
            "posture": "Reactive",
            "threshold": 1,
            "within": 0,
        },
        "actions": [
            {
                "type": "send-notification",
                "block": spec.notifications.block,
                "subject": subject,
                "body": "\n".join([*lines, *FOOTER]),
            }
        ],
    }


def notification_automations(specs: Sequence[ModelSpec]) -> list[dict[str, Any]]:
    """Every notification automation the specs ask for (specs without `notifications.block`: none)."""
    return [
        notification_automation(spec, kind)
        for spec in specs
        if spec.notifications.block
        for kind in dict.fromkeys(spec.notifications.on)  # a kind listed twice notifies once
    ]


def with_block_ids(automations: Sequence[dict[str, Any]], ids: dict[str, str]) -> list[dict[str, Any]]:
    """The automations with each action's ``block`` name replaced by its ``block_document_id``."""
    out = []
    for auto in automations:
        actions = []
        for action in auto["actions"]:
            resolved = {k: v for k, v in action.items() if k != "block"}
            if "block" in action:
                resolved["block_document_id"] = ids[action["block"]]
            actions.append(resolved)
        out.append({**auto, "actions": actions})
    return out


def notification_blocks(specs: Sequence[ModelSpec]) -> dict[str, list[str]]:
    """{block reference: [models that notify it]}, for the adapter to resolve each block once."""
    out: dict[str, list[str]] = {}
    for spec in specs:
        if spec.notifications.block:
            out.setdefault(spec.notifications.block, []).append(spec.name)
    return out


def notification_comment(specs: Sequence[ModelSpec]) -> str:
    """Trailing prefect.yaml comment naming the notification automations (they cannot live in the file)."""
    autos = notification_automations(specs)
    if not autos:
        return ""
    lines = [
        "",
        "# Notification automations (models/*.yaml `notifications:`). Deployment triggers can only run their",
        "# deployment, so these are standalone automations with a send-notification action, created by",
        "# `evergreen notify apply` (evergreen up runs it after the deploy), not by `prefect deploy`:",
        *(
            f"#   {a['name']}: {', '.join(a['trigger']['expect'])} -> {a['actions'][0]['block']}"
            for a in autos
        ),
    ]
    return "\n".join(lines) + "\n"
