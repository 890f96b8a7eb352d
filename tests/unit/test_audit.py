"""Audit entries: the model, idempotency keys, actor rules, run tags and the read-back order (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from evergreen.audit import (
    ENTRY_TAG,
    ENTRY_TAG_LIMIT,
    TAG_PREFIX,
    Action,
    AuditEntry,
    RunOrigin,
    derive_key,
    entry_from_tags,
    history,
    new_entry,
    parse_action,
    resolve_actor,
    run_tags,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def entry(action: Action = Action.PROMOTE, *, minutes: int = 0, **kw) -> AuditEntry:
    kw.setdefault("actor", "user:alice")
    kw.setdefault("versions", {"version": 7, "previous_champion": 4})
    kw.setdefault("evidence", {"flow_run_id": "fr-1"})
    return new_entry("elec2", action, now=T0 + timedelta(minutes=minutes), **kw)


# --- the entry model ---------------------------------------------------------------------------


def test_entry_normalises_time_to_utc_and_versions_to_strings():
    e = new_entry(
        "elec2",
        "promote",
        actor="user:a",
        versions={"version": 7, "previous_champion": None},
        now=datetime(2026, 12, 1, 13, 0, tzinfo=timezone(timedelta(hours=1))),
    )
    assert e.time == T0 and e.time.tzinfo == UTC
    assert e.versions == {"version": "7", "previous_champion": None}
    assert e.action is Action.PROMOTE
    rec = e.record()
    assert rec["action"] == "promote" and rec["time"].startswith("2026-12-01T12:00:00")


@pytest.mark.parametrize(
    "change",
    [
        {"time": datetime(2026, 12, 1)},  # naive time
        {"model": "Elec2"},  # not a model name
        {"action": "deploy"},  # unknown action
        {"actor": ""},
        {"idempotency_key": ""},
        {"surprise": 1},  # extra fields are refused
    ],
)
def test_entry_rejects_bad_fields(change):
    base = entry().model_dump()
    with pytest.raises(ValidationError):
        AuditEntry(**{**base, **change})


def test_entry_is_immutable():
    with pytest.raises(ValidationError):
        entry().reason = "edited"  # type: ignore[misc]


def test_new_entry_rejects_unknown_action_and_bad_model():
    with pytest.raises(ValueError, match="unknown action 'deploy'.*promote"):
        new_entry("elec2", "deploy", actor="a")
    with pytest.raises(ValueError, match="invalid model name"):
        new_entry("elec2'; drop", "promote", actor="a")
    assert parse_action("reject-batch") is Action.REJECT_BATCH


def test_evidence_is_stored_json_safe():
    e = entry(evidence={"at": T0, "n": 3})
    assert e.evidence == {"at": str(T0), "n": 3}


# --- idempotency keys ----------------------------------------------------------------------------


def test_derived_key_ignores_time_so_a_retry_gets_the_same_key():
    assert entry(minutes=0).idempotency_key == entry(minutes=5).idempotency_key


def test_derived_key_ignores_version_type_and_dict_order():
    a = derive_key("elec2", Action.PROMOTE, actor="x", versions={"version": 7, "previous_champion": 4})
    b = derive_key("elec2", "promote", actor="x", versions={"previous_champion": "4", "version": "7"})
    assert a == b and a.startswith("promote/elec2/")


@pytest.mark.parametrize(
    "change",
    [
        {"evidence": {"flow_run_id": "fr-2"}},  # another run: another decision
        {"versions": {"version": 8, "previous_champion": 7}},
        {"reason": "other"},
        {"actor": "user:bob"},
    ],
)
def test_derived_key_separates_different_decisions(change):
    assert entry(**change).idempotency_key != entry().idempotency_key


def test_explicit_key_wins():
    assert entry(key="promote/elec2/v7").idempotency_key == "promote/elec2/v7"


# --- actor rules ---------------------------------------------------------------------------------

ORIGIN = RunOrigin(flow_run_id="fr", flow="retrain", deployment="elec2-drift", automation="elec2-drift")


def login() -> str:
    return "carol"


@pytest.mark.parametrize(
    ("env", "origin", "expected"),
    [
        ({"EVERGREEN_ACTOR": "ci:nightly", "MLFLOW_TRACKING_USERNAME": "svc"}, ORIGIN, "ci:nightly"),
        ({"EVERGREEN_ACTOR": "  ", "MLFLOW_TRACKING_USERNAME": "svc"}, ORIGIN, "mlflow-user:svc"),
        ({}, ORIGIN, "automation:elec2-drift"),
        ({}, RunOrigin(flow="retrain", deployment="elec2-nightly"), "deployment:retrain/elec2-nightly"),
        ({}, RunOrigin(flow_run_id="fr", flow="retrain"), "user:carol"),  # an in-process CLI run
        ({}, None, "user:carol"),
    ],
)
def test_actor_rules_in_priority_order(env, origin, expected):
    assert resolve_actor(env, origin, login=login) == expected


def test_actor_without_a_login_is_unknown():
    assert resolve_actor({}, None, login=lambda: None) == "user:unknown"


def test_origin_evidence_keeps_only_known_facts():
    assert RunOrigin(flow_run_id="fr", flow="retrain").evidence() == {"flow_run_id": "fr", "flow": "retrain"}


# --- entries <-> run tags -------------------------------------------------------------------------


def test_small_entry_round_trips_through_one_tag():
    e = entry(reason="gate passed")
    tags, fits = run_tags(e)
    assert fits and tags[f"{TAG_PREFIX}model"] == "elec2" and tags[f"{TAG_PREFIX}action"] == "promote"
    assert tags[f"{TAG_PREFIX}idempotency_key"] == e.idempotency_key
    assert entry_from_tags(tags) == e


def test_large_entry_goes_to_an_artifact():
    e = entry(evidence={"gate": "x" * ENTRY_TAG_LIMIT})
    tags, fits = run_tags(e)
    assert not fits and ENTRY_TAG not in tags
    assert all(len(v) <= ENTRY_TAG_LIMIT for v in tags.values())
    assert entry_from_tags(tags, e.model_dump_json()) == e
    # artifact lost: the key fields survive and the evidence says what is missing
    degraded = entry_from_tags(tags, None)
    assert degraded.idempotency_key == e.idempotency_key and degraded.versions == e.versions
    assert "unavailable" in degraded.evidence


# --- read-back ------------------------------------------------------------------------------------


def test_history_is_oldest_first_with_one_entry_per_key():
    promote = entry(Action.PROMOTE, minutes=1)
    retried = entry(Action.PROMOTE, minutes=2)  # same key, written again by a racing retry
    skip = entry(Action.SKIP, minutes=3, reason="cooldown")
    ingest = entry(Action.INGEST, minutes=0, versions={"data_version": "abc"})
    out = history([("r3", skip), ("r2", retried), ("r1", promote), ("r0", ingest)])
    assert [e.action for e in out] == [Action.INGEST, Action.PROMOTE, Action.SKIP]
    assert out[1].time == promote.time  # the earliest copy is the entry


def test_history_filters_and_limits_to_the_most_recent():
    entries = [(f"r{i}", entry(Action.SKIP, minutes=i, reason=f"s{i}")) for i in range(5)]
    assert [e.reason for e in history(entries, limit=2)] == ["s3", "s4"]
    assert history(entries, action=Action.PROMOTE) == []
    assert history([], limit=3) == []


def test_record_decision_retries_only_when_the_server_was_unavailable():
    from prefect.states import Failed

    from adapters.audit_log import AuditLogError, AuditLogUnavailable
    from tasks.audit import _transient

    def retried(exc: Exception) -> bool:
        return _transient(None, None, Failed(data=exc))

    assert retried(AuditLogUnavailable("MLflow at http://x is unreachable"))
    assert not retried(AuditLogError("audit experiment is deleted"))
    assert not retried(ValueError("unknown action"))
