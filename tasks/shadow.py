"""Shadow, then promote (promotion.mode: shadow; docs/release.md): start a shadow, score it, decide.

- `start_shadow` (retrain flow, inside the model's lock): a gate-passed challenger gets the `shadow`
  alias instead of `champion` (compare-and-swap on the champion the gate judged against); a shadow it
  replaces is retired first. Audit `shadow`, events `model.registered` and `shadow.started`.
- `shadow_batch` (monitor flow): the shadow and the champion are scored on the batch's labelled rows;
  the batch's paired sums are stored as a tag on the shadow version (`shadow.batch.<n>`, so the count
  survives a killed run and a batch counts once), `shadow.scored` is emitted and audited (`shadow`,
  evidence step "scored"), and evergreen.shadow decides: promote (champion moves, compare-and-swap, audit `promote`, `shadow.promoted`) or retire
  (alias removed, version tagged retired, audit `retire`, `shadow.retired`).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from adapters import mlflow_registry as registry
from adapters.prefect_lock import model_lock
from evergreen import events, gate, training
from evergreen import shadow as rules
from evergreen.artifacts import artifact_key
from evergreen.audit import Action
from evergreen.events import Event
from evergreen.gate import GateDecision
from evergreen.lineage import gate_artifact
from evergreen.paired import batch_tag, batches_from_tags, loss_name, paired_batch, row_losses
from evergreen.settings import get_settings
from evergreen.spec import ModelSpec
from tasks.announce import emit_event, publish_markdown
from tasks.audit import record_decision
from tasks.monitoring import champion_batch_scores

SHADOW = rules.ALIAS


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def find_aliased(model: str, alias: str) -> registry.Champion | None:
    """The version behind `alias` (shadow, or champion), or None."""
    return registry.get_aliased(registry.client(get_settings()), model, alias)


@task(cache_policy=NO_CACHE)
def remove_alias(model: str, alias: str, version: str) -> bool:
    """Delete `alias` if it still points at `version` (False: it moved or is gone already)."""
    cl = registry.client(get_settings())
    found = registry.get_aliased(cl, model, alias)
    if found is None or found.version != str(version):
        return False
    cl.delete_registered_model_alias(model, alias)
    return True


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def tag(model: str, version: str, tags: dict[str, str]) -> None:
    registry.tag_version(get_settings(), model, version, tags)


def labelled_losses(
    spec: ModelSpec, frame: pd.DataFrame, scores: np.ndarray | None, other: registry.Champion
) -> tuple[np.ndarray, np.ndarray] | None:
    """(losses of `scores`, losses of `other`) on the batch's labelled rows; None when there are none."""
    target = spec.data.target
    if scores is None or target not in frame.columns:
        return None
    mask = frame[target].notna().to_numpy()
    if not mask.any():
        return None
    rows = frame[mask]
    theirs = champion_batch_scores(spec, other, rows)
    if theirs is None:
        return None
    y = training.labels(rows, spec)
    return row_losses(spec.metric, y, np.asarray(scores)[mask]), row_losses(spec.metric, y, theirs)


# --- retrain: start a shadow ------------------------------------------------------------------------


def start_shadow(
    spec: ModelSpec,
    version: str,
    verdict: GateDecision,
    previous: str,
    *,
    reason: str,
    trigger_event_id: str | None,
    data_version: str,
    lineage: dict[str, str],
    run_id: str,
    retrain_key: str,
) -> tuple[Literal["promoted", "rejected", "shadow"], str, str | None]:
    """Make gate-passed `version` the shadow of champion `previous`; (status, detail, champion after).

    The status type is promote_checked's plus "shadow", so the retrain flow can take either's answer.

    "rejected" (nothing moved) when the champion changed since the gate scored against it; the retrain
    flow then audits and announces the rejection as for a direct promotion.
    """
    model, log = spec.name, get_run_logger()
    now = find_aliased(model, registry.CHAMPION)
    current = None if now is None else now.version
    if current != previous:
        note = (
            f"champion changed from v{previous} to v{current or 'none'} during this run; re-run to re-score"
        )
        tag(model, version, {"rejection_reason": note})
        return "rejected", note, current
    old = find_aliased(model, SHADOW)
    if old is not None and old.version != version:
        retire(model, old.version, previous, f"replaced by shadow v{version}", {"replaced_by": version})
    registry.set_alias(get_settings(), model, SHADOW, version, reason=reason, previous=None)
    n = spec.promotion.shadow_batches
    tag(model, version, {"shadow_of": previous, "shadow_batches": str(n)})
    detail = (
        f"v{version} passed the gate and is now `shadow` beside champion v{previous}; the monitor decides "
        f"after {n} labelled batches ({verdict.summary})"
    )
    record_decision(
        model, Action.SHADOW, versions={"version": version, "champion": previous}, reason=detail,
        key=f"retrain:{retrain_key}:shadow",
        evidence={"run_id": run_id, "flow_run_id": retrain_key, "trigger_event_id": trigger_event_id,
                  "retrain_reason": reason, "gate": verdict.summary, "gate_outcome": verdict.outcome,
                  "data_version": data_version, "shadow_batches": n, "step": "started"},
    )  # fmt: skip
    payload = {
        **events.model_verdict(
            version=version, reason=reason, trigger_event_id=trigger_event_id, data_version=data_version,
            verdict=verdict, champion_version=previous, previous_champion=previous,
        ),
        "gate_outcome": verdict.outcome, "status": "shadow", "shadow_batches": n,
        "alpha": spec.promotion.alpha, "min_rows": spec.promotion.min_rows,
    }  # fmt: skip
    emit_event(Event.MODEL_REGISTERED, model, payload)
    emit_event(Event.SHADOW_STARTED, model, payload)
    report = gate.to_markdown(verdict, title=f"Gate report: {model} ({reason}) -> shadow")
    publish_markdown(
        artifact_key("gate", model), gate_artifact(report, version, lineage), f"{model} v{version}: shadow"
    )
    log.info("%s v%s is the shadow of champion v%s (%s batches to decide)", model, version, previous, n)
    return "shadow", detail, previous


# --- monitor: score, then decide ----------------------------------------------------------------------


def shadow_batch(
    spec: ModelSpec,
    champ: registry.Champion,
    frame: pd.DataFrame,
    scores: np.ndarray | None,
    *,
    batch_key: str,
    context: dict[str, Any],
) -> dict[str, Any] | None:
    """Score the shadow beside the champion on this batch, store the sums, decide; the payload or None."""
    model, log = spec.name, get_run_logger()
    sh = find_aliased(model, SHADOW)
    if sh is None:
        return None
    if sh.version == champ.version:  # a promotion stopped after moving `champion`: finish it
        return _resume_promotion(model, sh, champ)
    losses = labelled_losses(spec, frame, scores, sh)
    if losses is None:
        log.info("shadow v%s: no labelled rows in this batch; nothing scored", sh.version)
        return None
    stored = batches_from_tags(rules.TAG_PREFIX, sh.tags)
    counted = batch_key not in {b.key for b in stored}
    if counted:
        batch = paired_batch(batch_key, champ.version, losses[0], losses[1])
        tag(model, sh.version, batch_tag(rules.TAG_PREFIX, len(stored) + 1, batch))
        stored.append(batch)
    p = spec.promotion
    d = rules.decide(stored, champ.version, needed=p.shadow_batches, alpha=p.alpha, min_rows=p.min_rows)
    payload = {
        **context, "version": sh.version, "champion_version": champ.version, "counted": counted,
        "batch_rows": int(len(losses[0])), "batch_champion_loss": float(losses[0].mean()),
        "batch_shadow_loss": float(losses[1].mean()), **_numbers(spec, d),
    }  # fmt: skip
    payload["event_id"] = emit_event(Event.SHADOW_SCORED, model, payload)
    log.info("shadow %s v%s vs champion v%s: %s", model, sh.version, champ.version, d.summary)
    evidence = {"batches": d.batches, "rows": d.test.n, "p_worse": d.test.p_worse, "p_better": d.test.p_better,
                "mean_diff": d.test.mean_diff, "data_version": context.get("data_version", "")}  # fmt: skip
    # every scored batch is a step of the decision: audited once per batch (the key), so a re-run of a
    # batch whose entry a killed run never wrote still writes it, and one that was written is not repeated
    batch_id = hashlib.sha256(batch_key.encode()).hexdigest()[:16]
    record_decision(
        model, Action.SHADOW, versions={"version": sh.version, "champion": champ.version},
        reason=f"scored beside champion v{champ.version}: {d.summary}",
        evidence={"step": "scored", "batch_key": batch_key, "event_id": payload["event_id"], **evidence},
        key=f"shadow-scored/{model}/v{sh.version}/{batch_id}",
    )  # fmt: skip
    if d.decision == "promote":
        payload["decided"] = promote_shadow(model, sh.version, champ.version, d.summary, evidence)
    elif d.decision == "retire":
        payload["decided"] = retire_shadow(model, sh.version, champ.version, d.summary, evidence)
    return payload


def _numbers(spec: ModelSpec, d: rules.ShadowDecision) -> dict[str, Any]:
    t = d.test
    return {
        "decision": d.decision, "summary": d.summary, "batches": d.batches, "shadow_batches": d.needed,
        "rows": t.n, "loss": loss_name(spec.metric), "champion_loss": t.reference_loss,
        "shadow_loss": t.candidate_loss, "mean_diff": t.mean_diff, "p_worse": t.p_worse,
        "p_better": t.p_better, "alpha": d.alpha, "min_rows": d.min_rows,
    }  # fmt: skip


def promote_shadow(model: str, version: str, champion: str, summary: str, evidence: dict[str, Any]) -> str:
    """Shadow -> champion if the champion is still `champion` (compare-and-swap, in the model's lock)."""
    settings, log = get_settings(), get_run_logger()
    with model_lock(model):
        now = find_aliased(model, registry.CHAMPION)
        if now is None or now.version != champion:
            log.warning("champion moved to %s before shadow v%s was promoted: not promoting", now, version)
            return "champion-moved"
        if _shadow_moved(model, version):  # a retrain replaced (and retired) it meanwhile
            return "shadow-moved"
        registry.set_alias(
            settings, model, registry.CHAMPION, version, reason=f"shadow: {summary}"[:4000], previous=champion
        )
    return finish_promotion(model, version, champion, summary, evidence)


def finish_promotion(model: str, version: str, previous: str, summary: str, evidence: dict[str, Any]) -> str:
    """After `champion` moved to the shadow: audit, drop the `shadow` alias, tag, announce.

    The `shadow` alias on the champion marks an unfinished promotion: a run killed before it is removed
    leaves it, and the next monitor run comes back here (`_resume_promotion`); the audit entry's key
    stores it once, and the event goes out after the alias is gone, so at most once per promotion.
    """
    record_decision(
        model, Action.PROMOTE, versions={"version": version, "previous_champion": previous},
        reason=f"shadow promoted: {summary}", evidence={"source": "shadow", **evidence},
        key=f"shadow-promote/{model}/v{version}",
    )  # fmt: skip
    remove_alias(model, SHADOW, version)
    tag(model, version, {"shadow_decision": "promoted", "shadow_decided_at": datetime.now(UTC).isoformat()})
    # champion_version: the champion the shadow was compared with (the demo report's "champion then")
    body = {"version": version, "champion_version": previous, "previous_champion": previous,
            "decision": "promoted", "reason": "shadow decision: promoted", "summary": summary,
            **evidence}  # fmt: skip
    emit_event(Event.SHADOW_PROMOTED, model, body)
    return "promoted"


def _resume_promotion(model: str, sh: registry.Champion, champ: registry.Champion) -> dict[str, Any]:
    """Finish a shadow promotion a killed run left half done (champion moved, `shadow` still set),
    writing the promotion record first if the kill came before it (invariant 1)."""
    previous = sh.tags.get("shadow_of") or champ.tags.get("replaced_version") or ""
    get_run_logger().warning("%s: finishing the interrupted promotion of shadow v%s", model, sh.version)
    if not champ.tags.get("promoted_at"):
        now = datetime.now(UTC).isoformat()
        tag(model, sh.version, {"promoted_at": now, "champion_since": now, "replaced_version": previous,
                                "promotion_reason": "shadow: promotion completed after an interruption"})  # fmt: skip
        if previous:
            tag(model, previous, {"champion_until": now})
    summary = "shadow promotion completed by the next monitor run after an interruption"
    decided = finish_promotion(model, sh.version, previous, summary, {"recovered": True})
    return {"version": sh.version, "champion_version": sh.version, "decision": "promote", "decided": decided,
            "summary": summary, "recovered": True}  # fmt: skip


def _shadow_moved(model: str, version: str) -> bool:
    now = find_aliased(model, SHADOW)
    if now is not None and now.version == version:
        return False
    get_run_logger().warning("shadow of %s is no longer v%s (now %s): no decision", model, version, now)
    return True


def retire_shadow(model: str, version: str, champion: str, summary: str, evidence: dict[str, Any]) -> str:
    """The monitor's retire: in the model's lock, and only if `version` is still the shadow."""
    with model_lock(model):
        if _shadow_moved(model, version):
            return "shadow-moved"
        return retire(model, version, champion, summary, evidence)


def retire(model: str, version: str, champion: str | None, summary: str, evidence: dict[str, Any]) -> str:
    """Take `version` off the release path: alias removed, tagged retired (never an orphan), audited."""
    remove_alias(model, SHADOW, version)
    at = datetime.now(UTC).isoformat()
    why = f"retired from shadow: {summary}"
    tag(model, version, {"retired": "true", "retired_at": at, "shadow_decision": "retired",
                         "retired_reason": summary[:4000], "rejection_reason": why[:4000]})  # fmt: skip
    record_decision(
        model, Action.RETIRE, versions={"version": version, "champion": champion}, reason=why,
        evidence=evidence, key=f"retire/{model}/v{version}",
    )  # fmt: skip
    body = {"version": version, "champion_version": champion or "", "decision": "retired",
            "reason": "shadow decision: retired", "summary": summary, **evidence}  # fmt: skip
    emit_event(Event.SHADOW_RETIRED, model, body)
    return "retired"
