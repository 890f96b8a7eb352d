"""The event registry and payload builders: names and keys are a public interface (automations, demo)."""

from __future__ import annotations

import pytest

from evergreen import events
from evergreen.artifacts import artifact_key
from evergreen.events import Event
from evergreen.policy import Decision
from tests.unit.test_lineage import verdict

WIRE_NAMES = {
    "evergreen.data.ingested", "evergreen.data.rejected", "evergreen.drift.measured", "evergreen.drift.detected",
    "evergreen.performance.degraded", "evergreen.retrain.skipped", "evergreen.model.registered",
    "evergreen.model.promoted", "evergreen.model.rejected", "evergreen.model.rolled-back",
    "evergreen.labels.ingested",
    "evergreen.labels.requested", "evergreen.retrain.failed", "evergreen.performance.estimated",
    "evergreen.shadow.started", "evergreen.shadow.scored", "evergreen.shadow.promoted", "evergreen.shadow.retired",
    "evergreen.approval.requested", "evergreen.approval.decided", "evergreen.champion.watched",
    "evergreen.champion.regressed",
}  # fmt: skip


def test_registry_holds_every_wire_name_and_behaves_as_str():
    assert {e.value for e in Event} == WIRE_NAMES
    assert Event.MODEL_ROLLED_BACK == "evergreen.model.rolled-back"
    assert {Event.DRIFT_MEASURED: 1}["evergreen.drift.measured"] == 1
    with pytest.raises(ValueError):
        Event("evergreen.model.deleted")


def test_resource():
    assert events.resource_id("elec2") == "evergreen.model.elec2"
    assert events.resource("elec2", events.volume_labels(True)) == {
        "prefect.resource.id": "evergreen.model.elec2",
        "prefect.resource.name": "elec2",
        "evergreen.volume-threshold-met": "true",
    }
    assert events.volume_labels(False) == {"evergreen.volume-threshold-met": "false"}


def test_retrain_skipped_payload():
    d = Decision(retrain=False, reason="cooldown", detail="inside cooldown 27D")
    assert events.retrain_skipped(d, "drift", None) == {
        "reason": "cooldown", "detail": "inside cooldown 27D", "requested_reason": "drift", "trigger_event_id": "",
    }  # fmt: skip


def test_model_verdict_payload():
    v = verdict(passed=False)
    p = events.model_verdict(
        version="4", reason="volume", trigger_event_id="ev-1", data_version="r:m", verdict=v,
        champion_version="3", previous_champion="3",
    )  # fmt: skip
    assert p == {
        "version": "4", "reason": "volume", "trigger_event_id": "ev-1", "data_version": "r:m", "metric": "roc_auc",
        "challenger": 0.81, "champion": 0.8, "ci_low": -0.002, "ci_high": 0.02, "passed": False,
        "champion_version": "3", "previous_champion": "3", "summary": v.summary,
    }  # fmt: skip
    no_champ = events.model_verdict(
        version="1", reason="manual", trigger_event_id=None, data_version="r:m", verdict=verdict(),
        champion_version="1", previous_champion=None,
    )  # fmt: skip
    assert no_champ["previous_champion"] == "" and no_champ["trigger_event_id"] == ""
    assert events.verdict_event(True) is Event.MODEL_PROMOTED
    assert events.verdict_event(False) is Event.MODEL_REJECTED


def test_data_payloads():
    outcome = {
        "model": "elec2", "status": "ingested", "source": "b.csv", "rows": 336, "data_version": "r:m",
        "data_rev": "r", "total_rows": 3696, "dataset_created": False, "new_rows_since_champion": 336,
        "new_share": 0.1, "volume_threshold_met": False, "quarantined_to": None, "report": None, "failures": [],
    }  # fmt: skip
    p = events.data_ingested(outcome, 0.25)
    assert set(p) == set(events.INGESTED_KEYS) | {"volume_min_new_share"}
    assert p["volume_min_new_share"] == 0.25 and "status" not in p and "failures" not in p
    assert events.data_rejected("b.csv", 10, "q/b.csv", "q/b.csv.report.json", ["x"]) == {
        "source": "b.csv", "rows": 10, "quarantined_to": "q/b.csv", "report": "q/b.csv.report.json", "failures": ["x"],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "model", "key"),
    [
        ("gate", "elec2", "gate-elec2"),
        ("drift", "Elec2_V2", "drift-elec2-v2"),
        ("backtest", "a_b", "backtest-a-b"),
    ],
)
def test_artifact_key(kind, model, key):
    assert artifact_key(kind, model) == key


def test_labels_ingested_payload():
    outcome = {
        "model": "m", "status": "ingested", "source": "l.csv", "labels": 200, "data_version": "abc:123",
        "data_rev": "abc", "labelled_rows": 200, "unlabelled_rows": 136, "checks": {},
    }  # fmt: skip
    assert events.labels_ingested(outcome) == {
        "source": "l.csv", "labels": 200, "data_version": "abc:123", "data_rev": "abc", "labelled_rows": 200,
        "unlabelled_rows": 136,
    }  # fmt: skip
