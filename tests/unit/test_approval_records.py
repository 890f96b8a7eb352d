"""Approval records and wiring (issue 13 part 3) and the update side of issue 11 (CPU-seconds tag, refit of an update): pure parts,
the approval_gate's pass-through and rejection, event payloads, and `evergreen approve` input errors."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from evergreen import approval, events
from evergreen.approval import ApprovalDecision
from evergreen.spec import ModelSpec
from tests.unit.test_lineage import lineage, verdict
from tests.unit.test_spec_matrix import spec_dict


def _spec(**promotion: object) -> ModelSpec:
    raw = spec_dict("binary", name="appr")
    raw["promotion"] = promotion
    raw["gate"]["tolerance"] = 0.005
    return ModelSpec.model_validate(raw)


@pytest.mark.parametrize(("text", "seconds"), [("1h", 3600), ("30s", 30), ("2D", 172800)])
def test_timeout_seconds(text: str, seconds: int) -> None:
    assert approval.timeout_seconds(text) == seconds


def test_poll_is_ten_seconds_at_most_and_faster_for_short_timeouts() -> None:
    assert approval.poll_seconds(3600) == 10
    assert approval.poll_seconds(60) == 2
    assert approval.poll_seconds(3) == 1


def test_decisions_describe_themselves_and_become_tags() -> None:
    yes = ApprovalDecision(approved=True, approver="ana", comment="fine")
    no = ApprovalDecision(approved=False, approver="bo")
    late = approval.timed_out(5)
    assert (yes.status, no.status, late.status) == ("approved", "rejected", "timed_out")
    assert yes.describe() == "approved by ana: fine" and no.describe() == "rejected by bo"
    assert late.describe() == "approval timed out (no answer within 5 s): rejected" and not late.approved
    tags = approval.decision_tags(yes, "2026-01-01T00:00:00+00:00")
    assert tags == {
        "approval_status": "approved", "approval_approver": "ana", "approval_comment": "fine",
        "approval_decided_at": "2026-01-01T00:00:00+00:00",
    }  # fmt: skip
    assert approval.pending_tags("run-1") == {"approval_status": "pending", "approval_flow_run_id": "run-1"}


def test_event_payloads_carry_what_the_notification_template_reads() -> None:
    req = events.approval_requested(
        version="4",
        flow_run_id="run-1",
        verdict=verdict(),
        reason="drift",
        borderline=True,
        timeout_seconds=60,
    )
    # deployments/notify.py's approval_requested message reads these keys.
    assert {"version", "flow_run_id", "metric", "summary"} <= set(req)
    assert req["ci_low"] == -0.002 and req["champion_version"] == "3" and req["borderline"] is True
    dec = events.approval_decided(
        version="4", flow_run_id="run-1", approved=False, approver="bo", comment="no", timed_out=False
    )
    assert dec["decision"] == "rejected" and dec["approver"] == "bo"


def test_approval_gate_passes_through_when_no_person_is_needed() -> None:
    from tasks.approval import approval_gate

    v = verdict()
    assert approval_gate(_spec(), "4", v, "manual", "3") == (v, None)  # approval: never
    clear = v.model_copy(update={"ci_low": 0.01})  # not borderline: well above -tolerance
    assert approval_gate(_spec(approval="borderline"), "4", clear, "manual", "3") == (clear, None)
    failed = v.model_copy(update={"passed": False})
    assert approval_gate(_spec(approval="always"), "4", failed, "manual", "3") == (failed, None)


def test_a_rejection_turns_the_pass_into_a_rejection_for_the_alias_only(monkeypatch) -> None:
    import tasks.approval as mod

    no = ApprovalDecision(approved=False, approver="bo", comment="too risky")
    monkeypatch.setattr(mod, "request_approval", lambda *a, **k: no)
    v = verdict()  # ci_low -0.002 with tolerance 0.005: borderline
    alias, got = mod.approval_gate(_spec(approval="borderline"), "4", v, "manual", "3")
    assert got == no and not alias.passed and v.passed
    assert alias.reasons[0] == "rejected by bo: too risky (the gate had passed)"
    assert alias.reasons[1:] == v.reasons and alias.outcome == "rejected"
    yes = ApprovalDecision(approved=True, approver="ana")
    monkeypatch.setattr(mod, "request_approval", lambda *a, **k: yes)
    assert mod.approval_gate(_spec(approval="always"), "4", v, "manual", "3") == (v, yes)


def test_lineage_records_cpu_seconds_beside_wall_seconds() -> None:
    tags = lineage(train_cpu_seconds=2.5)
    assert tags["train_cpu_seconds"] == "2.500" and tags["train_seconds"] == "1.235"
    assert "train_cpu_seconds" not in lineage()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "error: name a model or a flow-run id to answer (or use --list)"),
        (["elec2"], "error: say --approve or --reject"),
    ],
)
def test_approve_cli_input_errors_are_one_line(args: list[str], message: str) -> None:
    import typer

    from cli import approve_cmd

    app = typer.Typer()
    app.callback()(lambda: None)  # a group, so the command keeps its name
    approve_cmd.register(app)
    result = CliRunner().invoke(app, ["approve", *args])
    assert result.exit_code == 1
    assert [ln for ln in result.output.splitlines() if ln.strip()] == [message]


def test_a_passed_update_is_refit_as_an_update_of_the_same_base() -> None:
    """training.refit + training.update: the refit continues the same champion on the window with the hold-out."""
    from evergreen import training, update
    from tasks.training import Trained, refit_if_passed
    from tests.unit.test_spec_matrix import synth_frame

    raw = spec_dict("binary", name="upd")
    raw["training"] |= {"refit": True, "update": {"trees": 3, "window": "7D"}, "holdout": {"period": "2D"}}
    spec = ModelSpec.model_validate(raw)
    frame = synth_frame("binary", weeks=3, seed=1)
    split = training.split(frame, spec)
    base, _ = training.fit(spec, split.train)
    tags = update.lineage_tags("update", {update.COUNT_TAG: "0"}, "1")
    chal = Trained(
        pipeline=base, rows=split.train.tail(50), seconds=0.5, cpu_seconds=0.25, base=base, mode_tags=tags
    )
    out = refit_if_passed.fn(spec, frame, chal, True)
    assert out.refit and out.mode_tags == tags and out.base is base
    assert (
        out.pipeline.named_steps["model"].booster_.num_trees()
        == base.named_steps["model"].booster_.num_trees() + 3
    )
    assert out.rows["ts"].max() == frame["ts"].max()  # the hold-out is learned too
    assert out.rows["ts"].min() > frame["ts"].max() - pd.Timedelta("7D")  # only the update window
    assert out.cpu_seconds > 0.25 and out.seconds > 0.5
    assert refit_if_passed.fn(spec, frame, chal, False) is chal
