"""The monitor flow's work, imported when a run starts (flows/monitor.py stays light to import).

A process worker starts every flow run in a fresh Python process, which must import the deployment's
entrypoint before the run can turn `Running`. flows/monitor.py therefore imports only Prefect; this
module holds the steps and pulls in pandas, SciPy, scikit-learn and the adapters (MLflow, DVC).
See docs/scale.md ("Event to run").
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger

from adapters.dvc_registry import frame_md5
from adapters.dvc_rows import Rows
from adapters.mlflow_registry import Champion
from evergreen.artifacts import artifact_key
from evergreen.events import Event
from evergreen.monitoring import MonitorAssessment, MonitorOutcome, assess, markdown_summary
from tasks.announce import emit_event, publish_markdown, publish_table
from tasks.drift import load_reference_sample
from tasks.estimate import estimate_and_announce
from tasks.monitoring import (
    champion_batch_scores,
    find_champion,
    load_profile,
    read_batch_file,
    save_streak,
    select_rows,
    streak_state,
)
from tasks.shadow import shadow_batch
from tasks.spec import load_model_spec
from tasks.watch import watch_batch


def _context(rows: Rows) -> dict[str, Any]:
    return {
        "source": rows.source,
        "selection": rows.selection,
        "data_version": rows.data_version,
        "data_rev": rows.data_rev,
        "n_rows": len(rows.frame),
    }


def _nothing_to_measure(model: str, champ: Champion | None, rows: Rows) -> MonitorOutcome:
    """No rows yet, or no champion: say so in a `drift.measured` event instead of failing the run."""
    version = champ.version if champ else ""
    if rows.selection == "none":
        detail = f"nothing to measure for {model}: {rows.source}"
        payload: dict[str, Any] = {"champion_version": version, "n_rows": 0, "note": detail}
        fields: dict[str, Any] = {"status": "no-data", "source": "", "selection": "none"}
    else:
        detail = (
            f"no champion for {model} yet: nothing to compare against (train one with `evergreen retrain`)"
        )
        payload = {**_context(rows), "champion_version": "", "note": detail}
        fields = {"status": "no-champion", **_context(rows)}
    get_run_logger().warning(detail)
    event = emit_event(Event.DRIFT_MEASURED.value, model, payload)
    return MonitorOutcome(
        model=model,
        champion_version=champ.version if champ else None,
        detail=detail,
        events={Event.DRIFT_MEASURED.value: event},
        **fields,
    )


def _announce(model: str, version: str, rows: Rows, result: MonitorAssessment) -> MonitorOutcome:
    """Artifacts and events of a measured batch."""
    out = MonitorOutcome(
        model=model,
        status="measured",
        champion_version=version,
        labelled_rows=result.labelled_rows,
        drift=result.drift,
        drift_detected=result.drift_detected,
        performance=result.performance,
        performance_degraded=result.performance_degraded,
        detail=result.drift_decision.detail,
        **_context(rows),
    )
    publish_table(
        artifact_key("drift", model),
        result.drift.to_rows(),
        f"{model} v{version}: drift {'DETECTED' if out.drift_detected else 'none'} on {out.n_rows} rows",
    )
    for name, payload in result.events.items():
        out.events[name] = emit_event(name, model, payload)
    publish_markdown(artifact_key("monitor", model), markdown_summary(out), f"{model}: monitor summary")
    return out


def run(model: str, batch: str | None, data_rev: str | None) -> dict[str, Any]:
    """The body of `flows.monitor.monitor` (same arguments)."""
    spec = load_model_spec(model)
    champ = find_champion(model)
    rows = read_batch_file(spec, batch) if batch else select_rows(spec, champ, data_rev or None)
    if champ is None or rows.selection == "none":
        return _nothing_to_measure(model, champ, rows).model_dump(mode="json")

    profile = load_profile(champ)
    scores = champion_batch_scores(spec, champ, rows.frame)
    batch_key = f"{rows.data_version}|{frame_md5(rows.frame)}"
    context = {**_context(rows), "champion_version": champ.version}
    result = assess(
        spec,
        profile,
        rows.frame,
        scores=scores,
        prior=streak_state(champ.tags),
        batch_key=batch_key,
        context=context,
        reference=load_reference_sample(spec, champ),  # multivariate drift (None unless enabled)
    )
    if result.streak_changed:
        value = result.performance.report.value if result.performance else None
        save_streak(model, champ.version, result.streak, value)
    out = _announce(model, champ.version, rows, result)
    # label-free CBPE estimate (triggers.estimated): on every batch, labelled or not
    estimated = estimate_and_announce(spec, champ, scores, batch_key=batch_key, context=context)
    if estimated is not None:
        out.estimate, out.events[Event.PERFORMANCE_ESTIMATED.value] = estimated
    # the release path (docs/release.md), on the same labelled rows: the new champion against the one it
    # replaced (promotion.watch_batches), and a pending shadow against the champion (promotion.mode: shadow)
    release = {
        "watch": watch_batch(spec, champ, rows.frame, scores, batch_key=batch_key, context=context),
        "shadow": shadow_batch(spec, champ, rows.frame, scores, batch_key=batch_key, context=context),
    }
    get_run_logger().info(
        "monitor %s v%s: drift %s, performance %s; events %s",
        model,
        champ.version,
        "DETECTED" if out.drift_detected else "none",
        "n/a" if out.performance is None else ("DEGRADED" if out.performance_degraded else "ok"),
        sorted(out.events),
    )
    return {**out.model_dump(mode="json"), **release}
