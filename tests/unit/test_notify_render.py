"""Notification automations rendered from `notifications:` (deployments/notify.py): names, matches,
Prefect's own schema and template validation, and payload keys that the events really carry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from deployments.notify import (
    MESSAGES,
    NOTIFY_EVENTS,
    TAG,
    notification_automations,
    notification_blocks,
    with_block_ids,
)
from evergreen.events import Event, resource_id
from evergreen.spec import parse_spec
from evergreen.spec_release import DEFAULT_NOTIFY_ON

ROOT = Path(__file__).resolve().parents[2]
ALL_KINDS = list(NOTIFY_EVENTS)
BLOCK_ID = "6f1c2d1e-0000-4000-8000-000000000001"


def _spec(name: str = "elec2", **notifications):
    raw = yaml.safe_load((ROOT / "models" / "elec2.yaml").read_text())
    raw["name"] = name
    if notifications:
        raw["notifications"] = notifications
    return parse_spec(raw)


def test_a_spec_without_a_block_renders_no_notification_automation():
    assert notification_automations([_spec()]) == []
    shipped = [parse_spec(yaml.safe_load(p.read_text())) for p in sorted((ROOT / "models").glob("*.yaml"))]
    assert notification_automations(shipped) == []  # the shipped specs leave notifications off


def test_default_kinds_one_automation_each_matching_only_the_models_resource():
    autos = notification_automations([_spec(block="ops"), _spec("bikes", block="ops")])
    names = [a["name"] for a in autos]
    assert names == [f"{m}-notify-{k}" for m in ("elec2", "bikes") for k in DEFAULT_NOTIFY_ON]
    for auto in autos:
        model = auto["name"].split("-notify-")[0]
        kind = auto["name"].split("-notify-")[1]
        assert auto["trigger"]["match"] == {"prefect.resource.id": resource_id(model)}
        assert auto["trigger"]["expect"] == [e.value for e in NOTIFY_EVENTS[kind]]  # type: ignore[index]
        assert auto["trigger"]["posture"] == "Reactive" and auto["trigger"]["within"] == 0
        assert auto["tags"] == [TAG]
        assert [a["type"] for a in auto["actions"]] == ["send-notification"]
        assert auto["actions"][0]["block"] == "ops"
    assert notification_blocks([_spec(block="ops"), _spec("bikes", block="ops")]) == {
        "ops": ["elec2", "bikes"]
    }


def test_every_kind_maps_to_existing_events_and_duplicates_notify_once():
    autos = notification_automations([_spec(block="ops", on=ALL_KINDS + ["drift"])])
    assert [a["name"].removeprefix("elec2-notify-") for a in autos] == ALL_KINDS
    assert set(MESSAGES) == set(NOTIFY_EVENTS)
    assert NOTIFY_EVENTS["shadow_decided"] == (Event.SHADOW_PROMOTED, Event.SHADOW_RETIRED)


def test_resolved_automations_pass_prefects_automation_schema_and_template_validation():
    from prefect.events.schemas.automations import AutomationCore
    from prefect.server.events.actions import SendNotification

    autos = with_block_ids(notification_automations([_spec(block="ops", on=ALL_KINDS)]), {"ops": BLOCK_ID})
    for auto in autos:
        core = AutomationCore.model_validate(auto)
        action = core.actions[0]
        assert action.type == "send-notification" and str(action.block_document_id) == BLOCK_ID
        SendNotification.model_validate(auto["actions"][0])  # the server's Jinja check of subject/body
        assert "block" not in auto["actions"][0]


def test_an_unknown_notify_kind_is_a_spec_error():
    from evergreen.spec import SpecError

    with pytest.raises(SpecError, match="notifications"):
        _spec(block="ops", on=["promoted", "exploded"])


def _payload_keys(kind: str) -> set[str]:
    subject, lines = MESSAGES[kind]  # type: ignore[index]
    return set(re.findall(r"event\.payload\.(\w+)", subject + "\n".join(lines)))


def test_message_templates_read_payload_keys_the_events_carry():
    from evergreen.events import model_verdict
    from evergreen.gate import GateDecision
    from flows.rollback import RollbackOutcome
    from tasks.retrain_failed import failure_payload

    verdict = GateDecision(
        passed=True, reasons=["ok"], metric="roc_auc", challenger=0.8, champion=0.79, champion_version="1",
        floor=0.7, diff_mean=0.01, ci_low=-0.01, ci_high=0.03, confidence=0.95, tolerance=0.1,
        require_superiority=False, latency_p95_ms=None, latency_budget_ms=None, n_holdout=336, n_resamples=10,
    )  # fmt: skip
    gate = model_verdict(
        version="2", reason="drift", trigger_event_id=None, data_version="d", verdict=verdict,
        champion_version="2", previous_champion="1",
    )  # fmt: skip
    assert _payload_keys("promoted") <= set(gate) and _payload_keys("rejected") <= set(gate)
    assert _payload_keys("rolled_back") <= set(RollbackOutcome.model_fields)
    assert _payload_keys("retrain_failed") <= set(failure_payload({}, "id", None))


def test_drift_message_reads_keys_of_a_real_drift_detected_payload():
    from evergreen.drift import build_profile
    from evergreen.monitoring import StreakState, assess
    from tests.support.builders import SYNTH_ROWS, synthetic_spec_dict, synthetic_stream

    stream = synthetic_stream(n_batches=6, drift_at=4)
    train = stream.iloc[: 2 * SYNTH_ROWS]
    profile = build_profile(train, ["x1", "x2"], ["c"], bins=20, labels=train["y"].to_numpy())
    drifted = stream.iloc[5 * SYNTH_ROWS : 6 * SYNTH_ROWS].reset_index(drop=True)
    context = {"source": "test", "n_rows": SYNTH_ROWS, "champion_version": "3", "data_version": "d"}
    out = assess(
        parse_spec(synthetic_spec_dict()), profile, drifted, scores=None, prior=StreakState(),
        batch_key="b5", context=context,
    )  # fmt: skip
    assert _payload_keys("drift") <= set(out.events[Event.DRIFT_DETECTED.value])


def test_prefect_yaml_names_the_notification_automations_in_a_comment_only():
    from deployments import render_prefect_yaml

    plain = render_prefect_yaml([_spec()])
    text = render_prefect_yaml([_spec(block="custom-webhook/ops", on=["promoted"])])
    assert text.startswith(plain)  # the deployments themselves do not change
    tail = text[len(plain) :]
    assert "#   elec2-notify-promoted: evergreen.model.promoted -> custom-webhook/ops" in tail
    assert all(line.startswith("#") or not line for line in tail.splitlines())
    assert yaml.safe_load(text) == yaml.safe_load(plain)
