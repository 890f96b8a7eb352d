"""Notifications on a real Prefect server: spec -> rendered automations -> real events -> a webhook.

A local HTTP receiver (demo/receiver.py, a stdlib server on a free loopback port) stands in for Slack.
`evergreen notify setup`'s code path creates a custom-webhook block pointing at it and applies the
automations rendered from a spec with `notifications.block`; then the events Evergreen emits on a
promotion, a rejection, a rollback, a drift and a failed retrain are emitted for real (the same
resource and payload builders the flows use). The server's automations deliver one message per event,
naming the model, the version and the event. A second apply changes nothing; dropping the block from
the spec deletes the automations.
"""

from __future__ import annotations

import uuid

import pytest

from adapters import prefect_api
from adapters.prefect_notify import NotifyError, apply_notifications, save_webhook_block
from demo.receiver import WebhookReceiver
from deployments import load_specs
from evergreen.events import Event, model_verdict
from evergreen.gate import GateDecision
from tasks.retrain_failed import failure_payload
from tests.support.builders import elec2_spec_dict, write_spec

pytestmark = [pytest.mark.slow, pytest.mark.integration]

KINDS = ["promoted", "rejected", "rolled_back", "drift", "retrain_failed"]


def _verdict(passed: bool) -> GateDecision:
    reason = "roc_auc diff CI [-0.010, 0.030] within tolerance" if passed else "roc_auc 0.61 < floor 0.70"
    return GateDecision(
        passed=passed,
        reasons=[reason],
        metric="roc_auc",
        challenger=0.84 if passed else 0.61,
        champion=0.83,
        champion_version="1",
        floor=0.7,
        diff_mean=0.01,
        ci_low=-0.01,
        ci_high=0.03,
        confidence=0.95,
        tolerance=0.1,
        require_superiority=False,
        latency_p95_ms=3.0,
        latency_budget_ms=250.0,
        n_holdout=336,
        n_resamples=200,
    )


def _emit_all(model: str) -> None:
    """The five events, with the payloads the retrain, rollback and monitor flows build."""
    from flows.rollback import RollbackOutcome

    for version, passed in (("2", True), ("3", False)):
        payload = model_verdict(
            version=version,
            reason="drift",
            trigger_event_id=str(uuid.uuid4()),
            data_version="abc123:d41d8cd9",
            verdict=_verdict(passed),
            champion_version="2",
            previous_champion="1",
        )
        prefect_api.emit(Event.MODEL_PROMOTED if passed else Event.MODEL_REJECTED, model, payload)
    back = RollbackOutcome(model=model, from_version="2", to_version="1", reason="regressed", at="now")
    prefect_api.emit(Event.MODEL_ROLLED_BACK, model, back.model_dump())
    drift = {
        "champion_version": "1",
        "data_version": "abc123:d41d8cd9",
        "drift_score": 4.82,
        "drifted_features": ["nswprice", "vicprice"],
        "summary": "2 of 7 features drifted (share 0.29 < 0.5); critical nswdemand did not",
    }
    prefect_api.emit(Event.DRIFT_DETECTED, model, drift)
    failed = failure_payload({"model": model, "reason": "schedule"}, str(uuid.uuid4()), OSError("disk full"))
    prefect_api.emit(Event.RETRAIN_FAILED, model, failed)
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all(timeout=30)


def test_spec_notifications_reach_a_local_webhook_through_prefect_automations(
    prefect_server, stack_env, tmp_path
):
    model = f"notify-{uuid.uuid4().hex[:8]}"
    block = f"hook-{uuid.uuid4().hex[:6]}"
    raw = elec2_spec_dict(model)
    raw["notifications"] = {"block": block, "on": KINDS}
    models = tmp_path / "models"
    write_spec(models, raw)
    stack_env(prefect=prefect_server, home=tmp_path / "home")

    with WebhookReceiver(tmp_path / "received.jsonl") as receiver:
        specs = load_specs(models)
        with pytest.raises(NotifyError, match=block):  # the block does not exist yet
            apply_notifications(specs)
        assert save_webhook_block(receiver.url, block) == f"custom-webhook/{block}"
        first = apply_notifications(specs)
        assert sorted(first["created"]) == sorted(f"{model}-notify-{k}" for k in KINDS)
        again = apply_notifications(specs)
        assert again["created"] == [] and sorted(again["updated"]) == sorted(first["created"])

        _emit_all(model)
        got = receiver.wait_for(lambda ms: len(ms) >= len(KINDS), timeout=45)

    bodies = {m["subject"]: m["body"] for m in got}
    assert len(got) == len(KINDS), f"expected {len(KINDS)} notifications, got {list(bodies)}"
    assert all(m["block"] == block and m["path"] == "/notify" for m in got)
    assert all(f"model: {model}" in body for body in bodies.values())
    events = {line.removeprefix("event: ") for b in bodies.values() for line in b.splitlines()}
    for ev in (Event.MODEL_PROMOTED, Event.MODEL_REJECTED, Event.MODEL_ROLLED_BACK, Event.DRIFT_DETECTED):
        assert ev.value in events
    assert Event.RETRAIN_FAILED.value in events
    subjects = sorted(bodies)
    assert f"[evergreen] {model}: v2 promoted to champion" in subjects
    assert f"[evergreen] {model}: v3 rejected by the gate" in subjects
    assert f"[evergreen] {model}: champion rolled back to v1" in subjects
    assert "Drifted features: nswprice, vicprice." in bodies[f"[evergreen] {model}: drift detected"]
    assert "OSError: disk full" in bodies[f"[evergreen] {model}: retrain failed"]
    assert (tmp_path / "received.jsonl").read_text().count("\n") == len(KINDS)

    raw.pop("notifications")
    write_spec(models, raw)
    gone = apply_notifications(load_specs(models))
    assert sorted(gone["deleted"]) == sorted(first["created"])


def test_evergreen_up_applies_the_notification_automations_after_the_deploy(
    prefect_server, stack_env, tmp_path
):
    """stack/notify.py, as `evergreen up` calls it: a missing block is a warning naming it, then applied."""
    from stack.config import StackConfig
    from stack.notify import apply_notifications as up_apply
    from tests.support.builders import ROOT

    model = f"notify-up-{uuid.uuid4().hex[:8]}"
    block = f"hook-{uuid.uuid4().hex[:6]}"
    raw = elec2_spec_dict(model)
    raw["notifications"] = {"block": block, "on": ["promoted"]}
    models = tmp_path / "models"
    write_spec(models, raw)
    env = stack_env(prefect=prefect_server, home=tmp_path / "home")
    cfg = StackConfig(home=tmp_path / "home", project_root=ROOT, models_dir=models)
    warnings: list[str] = []

    missing = up_apply(cfg, prefect_server.api_url, env, warnings.append)
    assert missing["status"] == "failed" and block in missing["error"]
    assert warnings and warnings[0].startswith("warning: notification automations not applied")

    save_webhook_block("http://127.0.0.1:9/unused", block)
    done = up_apply(cfg, prefect_server.api_url, env, warnings.append)
    assert done["status"] == "applied" and done["created"] == [f"{model}-notify-promoted"]
    apply_notifications([])  # leave the session server without this test's automations
