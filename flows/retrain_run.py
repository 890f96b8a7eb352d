"""The retrain flow's work, imported when a run starts (flows/retrain.py stays light to import).

A process worker starts every flow run in a fresh Python process, which must import the deployment's
entrypoint before the run can turn `Running`. flows/retrain.py therefore imports only Prefect and
pydantic; this module holds the steps and pulls in pandas, scikit-learn, SciPy and the adapters (which
import GX, LightGBM, MLflow and DVC where they use them). See docs/scale.md ("Event to run").
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from prefect import get_run_logger
from prefect.runtime import flow_run

from adapters.prefect_lock import model_lock
from evergreen import events, gate, training, update
from evergreen.artifacts import artifact_key
from evergreen.audit import Action
from evergreen.events import Event
from evergreen.lineage import gate_artifact, judgement_tags
from flows.retrain_outcome import RetrainOutcome
from tasks.announce import emit_event, publish_markdown
from tasks.approval import approval_gate
from tasks.audit import record_decision
from tasks.data import pull_data, validate_training_set
from tasks.promotion import promote_checked, recover, register_once
from tasks.registry import champion_tags, check_cooldown, describe_lineage, log_candidate
from tasks.shadow import start_shadow
from tasks.spec import load_model_spec
from tasks.training import Trained, gate_candidate, refit_if_passed, score_candidate, train_update_or_full

if TYPE_CHECKING:
    import pandas as pd

    from evergreen.gate import GateDecision
    from evergreen.policy import Decision
    from evergreen.spec import ModelSpec


def run(
    model: str,
    reason: str,
    data_rev: str | None,
    trigger_event_id: str | None,
    force: bool,
    overrides: dict[str, Any] | None,
    started: float,
) -> dict[str, Any]:
    """The body of `flows.retrain.retrain` (same arguments; `started` is its perf_counter at entry)."""
    spec = load_model_spec(model, overrides)
    policy = check_cooldown(spec, force=force, reason=reason)
    if not policy.retrain:
        return _skipped(model, policy, reason, trigger_event_id)

    frame, data = pull_data(spec, data_rev)
    checked = validate_training_set(frame, spec, data.id)
    split = training.split(frame, spec)
    # training.update: continue the current champion with a few trees, or a full fit (refit_every, drift).
    challenger = train_update_or_full(spec, split, reason)
    job = _Run(spec, reason, trigger_event_id, str(flow_run.get_id() or uuid.uuid4()), started)
    with model_lock(model):
        recover(model, job.key)
        if not force:  # a run that queued behind a promotion must honour that promotion's cooldown
            policy = check_cooldown(spec, force=False, reason=reason)
            if not policy.retrain:
                return _skipped(model, policy, reason, trigger_event_id)
        return job.judge_and_register(frame, data, checked, split, challenger)


class _Run:
    """The locked part of one retrain: score -> gate -> register -> alias, then audit and announce."""

    def __init__(
        self, spec: ModelSpec, reason: str, trigger_event_id: str | None, key: str, started: float
    ) -> None:
        self.spec, self.reason, self.trigger, self.key, self.started = (
            spec, reason, trigger_event_id, key, started,
        )  # fmt: skip

    def judge_and_register(
        self, frame: pd.DataFrame, data: Any, checked: Any, split: training.Split, challenger: Trained
    ) -> dict[str, Any]:
        spec, model, reason = self.spec, self.spec.name, self.reason
        tcol = spec.data.time_column
        # Only rows neither model trained on count (a refit champion learned its own hold-out).
        unseen = training.unseen_holdout(
            split.holdout, tcol, training.champion_trained_until(champion_tags(model))
        )
        enough = len(unseen) >= spec.gate.min_holdout_rows
        judged_rows = unseen if enough else split.holdout  # too few: scored for the record, not judged
        scored = score_candidate(spec, challenger.pipeline, judged_rows)
        verdict = gate_candidate(spec, scored, judged_rows)
        if spec.gate.enabled:
            verdict = gate.with_evidence(
                verdict, unseen_rows=len(unseen), excluded_rows=len(split.holdout) - len(unseen),
                min_rows=spec.gate.min_holdout_rows,
            )  # fmt: skip
        trained = refit_if_passed(spec, frame, challenger, verdict.passed)
        tags = describe_lineage(spec, data, trained, split.holdout, checked, verdict, reason, self.trigger)
        tags |= self._judgement(challenger, trained, judged_rows if enough else unseen, verdict)
        logged = log_candidate(spec, trained, judged_rows, scored, verdict, checked, tags)
        version = register_once(model, logged, tags, f"{reason}: {verdict.summary}")
        previous = scored.champion_version
        # promotion.approval: a paused run asks a person; a no (or the timeout) rejects for the alias only.
        alias_verdict, approval = approval_gate(spec, version, verdict, reason, previous)
        if alias_verdict.passed and previous and spec.promotion.mode == "shadow":  # the monitor decides later
            status, detail, current = start_shadow(
                spec, version, verdict, previous, reason=reason, trigger_event_id=self.trigger,
                data_version=data.id, lineage=tags, run_id=logged.run_id, retrain_key=self.key,
            )  # fmt: skip
        else:
            status, detail, current = promote_checked(model, version, alias_verdict, previous, reason)
        if status != "shadow":  # start_shadow audits and announces its own
            self._audit(status, version, previous, detail, verdict, logged.run_id, data.id)
            _announce(model, reason, self.trigger, data.id, version, verdict, current, previous, tags, status)
        return RetrainOutcome(
            model=model, status=status, reason=reason, version=version, champion_version=current,
            previous_champion=previous, decision=verdict.model_dump(), data_version=data.id, run_id=logged.run_id,
            metrics={**scored.holdout_metrics, f"champion_{spec.metric}": verdict.champion,
                     "latency_p95_ms": scored.latency_p95_ms, "train_seconds": trained.seconds,
                     "train_cpu_seconds": trained.cpu_seconds},
            detail=detail, gate_outcome=verdict.outcome, training_mode=trained.mode_tags.get(update.MODE_TAG),
            base_version=trained.mode_tags.get(update.BASE_TAG),
            approval=None if approval is None else approval.model_dump(),
            seconds={"train": round(trained.seconds, 3), "train_cpu": round(trained.cpu_seconds, 3),
                     "total": round(time.perf_counter() - self.started, 3)},
        ).model_dump()  # fmt: skip

    def _judgement(
        self, challenger: Trained, trained: Trained, gate_rows: pd.DataFrame, verdict: GateDecision
    ) -> dict[str, str]:
        tcol = self.spec.data.time_column

        def bounds(rows: pd.DataFrame) -> dict[str, str]:
            return {"train_start": str(rows[tcol].min()), "train_end": str(rows[tcol].max())}

        col = gate_rows[tcol]
        return judgement_tags(
            retrain_key=self.key, outcome=verdict.outcome, challenger=bounds(challenger.rows),
            challenger_rows=len(challenger.rows), gate_rows=len(gate_rows),
            gate_bounds=(str(col.min()), str(col.max())), excluded_rows=verdict.n_excluded,
            registered=bounds(trained.rows), registered_rows=len(trained.rows), refit=trained.refit,
        )  # fmt: skip

    def _audit(
        self, status: str, version: str, previous: str | None, detail: str, verdict: GateDecision,
        run_id: str, data_version: str,
    ) -> None:  # fmt: skip
        action = Action.PROMOTE if status == "promoted" else Action.REJECT_MODEL
        record_decision(
            self.spec.name, action, versions={"version": version, "previous_champion": previous},
            reason=detail, key=f"retrain:{self.key}:{action.value}",
            evidence={"run_id": run_id, "flow_run_id": self.key, "trigger_event_id": self.trigger,
                      "retrain_reason": self.reason, "gate": verdict.summary,
                      "gate_outcome": verdict.outcome, "data_version": data_version},
        )  # fmt: skip


def _skipped(model: str, policy: Decision, reason: str, trigger_event_id: str | None) -> dict[str, Any]:
    """Skip: log, audit, announce; nothing is trained or registered."""
    get_run_logger().info("skipping retrain of %s: %s", model, policy.detail)
    record_decision(
        model, Action.SKIP, reason=policy.detail,
        evidence={"policy": policy.reason, "retrain_reason": reason, "trigger_event_id": trigger_event_id},
    )  # fmt: skip
    emit_event(Event.RETRAIN_SKIPPED, model, events.retrain_skipped(policy, reason, trigger_event_id))
    return RetrainOutcome(
        model=model, status="skipped", reason=policy.reason, detail=policy.detail
    ).model_dump()


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
    payload = {
        **events.model_verdict(
            version=version,
            reason=reason,
            trigger_event_id=trigger_event_id,
            data_version=data_version,
            verdict=verdict,
            champion_version=current,
            previous_champion=previous,
        ),
        "gate_outcome": verdict.outcome,
        "status": status,
    }
    emit_event(Event.MODEL_REGISTERED, model, payload)
    emit_event(events.verdict_event(status == "promoted"), model, payload)
    report = gate.to_markdown(verdict, title=f"Gate report: {model} ({reason})")
    publish_markdown(
        artifact_key("gate", model), gate_artifact(report, version, tags), f"{model} v{version}: {status}"
    )
