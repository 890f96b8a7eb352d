"""Which versions the rollback flow accepts as a target without --force (tasks/rollback.passed_gate)."""

from __future__ import annotations

import json

import pytest

from tasks.rollback import passed_gate

PASSED = {"gate_passed": "true", "gate_decision": json.dumps({"passed": True})}


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (PASSED, True),
        ({"gate_passed": "true", "promoted_at": "2026-12-01T00:00:00+00:00"}, True),
        ({"gate_passed": "false", "gate_decision": json.dumps({"passed": False})}, False),
        ({}, False),
        ({**PASSED, "approval_status": "approved"}, True),
        ({**PASSED, "approval_status": "rejected"}, False),  # a person said no
        ({**PASSED, "approval_status": "timed_out"}, False),  # nobody answered: rejected
        ({**PASSED, "retired": "true"}, False),  # a shadow that lost on live rows
        ({**PASSED, "retired": "true", "promoted_at": "2026-12-01T00:00:00+00:00"}, True),  # was champion
    ],
)
def test_a_target_passed_its_gate_and_its_release(tags: dict[str, str], expected: bool) -> None:
    assert passed_gate(tags) is expected
