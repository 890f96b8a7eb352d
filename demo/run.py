"""The demo run: stack up, warm-up, replay week by week, report, stack down (unless --keep)."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from demo.data import replay_batches, write_batch
from demo.environment import demo_environment, demo_models_dir, reset_demo_home
from demo.options import DemoError, DemoOptions, DemoPaths, DemoResult, Log, OnWeek, noop
from demo.prefect_rest import PrefectApi
from demo.registry import Champion, collect_versions
from demo.release import DemoNotifications, notified_events, spec_overrides
from demo.report import write_report
from demo.settle import Settle, settle, unreported
from stack import StackError, local


def run_demo(
    opts: DemoOptions, *, log: Log = noop, on_week: OnWeek = noop, paths: DemoPaths | None = None
) -> DemoResult:
    """Bring the demo stack up, replay, write the report; stop the stack unless `opts.keep`."""
    t_start = time.monotonic()
    paths = paths or DemoPaths.from_settings()
    root = local.find_project_root()
    result = DemoResult(demo_home=str(paths.demo_home), options=asdict(opts))
    reset_demo_home(paths.demo_home, log)
    models_dir = demo_models_dir(root, paths.demo_home, opts.cooldown, spec_overrides(opts))
    notes = DemoNotifications(paths.demo_home, log) if opts.notify else None
    with demo_environment(paths, models_dir, log):
        cfg = local.StackConfig.from_settings()
        cfg.worker_query_seconds = min(cfg.worker_query_seconds, 1.0)
        cfg.apply_notifications = False  # `notes.setup` applies them once the demo's block exists
        started = False
        try:
            if notes is not None:
                notes.start()
            log(f"starting the demo stack in {paths.demo_home}")
            st = local.up(cfg, deploy=True, progress=log)
            started = True
            result.seconds["stack_up"] = round(time.monotonic() - t_start, 1)
            result.urls = _use_stack(st, paths)
            if notes is not None:
                from deployments import load_specs

                notes.setup(load_specs(models_dir))
            _replay(opts, paths, root, result, log, on_week, notes)
            log("collecting model versions, gate reports and lineage")
            result.versions = collect_versions(opts.model)
            if result.side:
                result.side["versions"] = collect_versions(result.side["model"])
            result.report = str(write_report(result, paths.report))
            log(f"report written to {result.report}")
        finally:
            if notes is not None:
                notes.stop()
            if started and not opts.keep:
                log("stopping the demo stack (use --keep to leave the UIs up)")
                with contextlib.suppress(StackError, OSError):
                    local.down(cfg, progress=log)
            elif started:
                result.kept = True
    result.seconds["total"] = round(time.monotonic() - t_start, 1)
    return result


def _use_stack(st: dict[str, Any], paths: DemoPaths) -> dict[str, str]:
    """Point this process at the stack that just came up; its UI URLs."""
    os.environ.update(st["env"])
    os.environ["PREFECT_HOME"] = str(paths.demo_home / "prefect-client")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # keeps the live table readable
    return {
        "prefect_ui": st["urls"]["prefect_ui"],
        "mlflow_ui": st["urls"]["mlflow_ui"],
        "env_file": str(st.get("env_file", "")),
    }


@dataclass
class Replay:
    """What every step of the replay needs: the API, the deployments, and where batches go."""

    opts: DemoOptions
    api: PrefectApi
    names: dict[str, str]  # ingest/monitor/retrain -> "<flow>/<model>"
    dep_ids: list[str]  # every deployment of the model (all its retrain priorities)
    batches_dir: Path
    log: Log
    reported: set[str] = field(default_factory=set)  # versions already shown in a row
    notes: DemoNotifications | None = None  # the webhook receiver (None: --no-notify)
    shadow_seen: set[str] = field(default_factory=set)  # shadow decision events already in a row
    model: str = ""  # the replayed model (default: opts.model)
    start_week: int = -1  # its first replay week (default: opts.start_week)
    retrain_dep_ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.model = self.model or self.opts.model
        self.start_week = self.opts.start_week if self.start_week < 0 else self.start_week

    def settle(self, since: datetime, expect_monitor: bool = True, expect_untriggered: int = 0) -> Settle:
        """Wait for the chain started at `since`; its retrain rows leave out versions already reported."""
        out = settle(self.api, self.dep_ids, since, self.opts, expect_monitor, expect_untriggered)
        out.retrains = unreported(out.retrains, self.reported)
        return out

    def retrain(self, reason: str, **extra: Any) -> list[dict[str, Any]]:
        """An explicit retrain run (no trigger event), and the outcome rows it produced."""
        since = datetime.now(UTC)
        params = {"model": self.model, "reason": reason, **extra}
        _run(self.api, self.names["retrain"], params, self.opts, fail_ok=reason != "manual")
        return self.settle(since, expect_monitor=False, expect_untriggered=1).retrains


@dataclass
class _Model:
    """One replayed model: its replay state, spec, champion and weeks."""

    rp: Replay
    spec: Any
    champion: Champion
    warm: Any
    weeks: list[Any]


def _prepare(
    opts: DemoOptions,
    api: PrefectApi,
    paths: DemoPaths,
    root: Path,
    log: Log,
    model: str,
    start: int,
    n: int,
    notes: DemoNotifications | None = None,
) -> _Model:
    from deployments import retrain_deployments
    from evergreen.spec import load_spec

    spec = load_spec(model, Path(os.environ["EVERGREEN_MODELS_DIR"]))
    names = {k: f"{k}/{model}" for k in ("ingest", "monitor", "retrain")}
    retrain_ids = [api.deployment_id(f"retrain/{d}") for d in retrain_deployments(spec).values()]
    dep_ids = [api.deployment_id(names["ingest"]), api.deployment_id(names["monitor"]), *retrain_ids]
    rp = Replay(
        opts,
        api,
        names,
        dep_ids,
        paths.demo_home / "batches" / model,
        log,
        model=model,
        start_week=start,
        notes=notes,
    )
    rp.retrain_dep_ids = retrain_ids
    warm, weeks = replay_batches(opts, root, model, start, n)
    return _Model(rp, spec, Champion(model), warm, weeks)


def _replay(
    opts: DemoOptions,
    paths: DemoPaths,
    root: Path,
    result: DemoResult,
    log: Log,
    on_week: OnWeek,
    notes: DemoNotifications | None = None,
) -> None:
    api = PrefectApi(os.environ["PREFECT_API_URL"])
    t0 = datetime.now(UTC)
    models = [_prepare(opts, api, paths, root, log, opts.model, opts.start_week, opts.weeks, notes)]
    if opts.side_model:
        n = opts.weeks if opts.side_weeks is None else opts.side_weeks
        models.append(_prepare(opts, api, paths, root, log, opts.side_model, opts.side_start_week, n, notes))
    for m in models:
        _shrink_automation_window(m.rp)
        warmup = _warmup(m.rp, m.warm, m.champion, paths)
        log(f"{m.rp.model} warm-up done in {warmup['seconds']}s: champion v{m.champion.version}")
        if m.rp.model == opts.model:
            result.warmup = warmup
        else:
            result.side = {"model": m.rp.model, "weeks": [], "versions": [], "warmup": warmup}
    # week for week: each model's batch, then its chain settles, before the next model's batch
    for i in range(max(len(m.weeks) for m in models)):
        for m in models:
            if i >= len(m.weeks):
                continue
            row = _replay_week(m.rp, i, m.weeks[i], m.champion, m.spec)
            (result.weeks if m.rp.model == opts.model else result.side["weeks"]).append(row)
            result.shadow_decisions += row["shadow"]
            on_week(row)
    if notes is not None:
        expected = len(api.events(t0, names=sorted(notified_events(opts))))
        result.notifications = notes.finish(expected, opts.notify_wait)
        result.release = dict(notes.info)


def _shrink_automation_window(rp: Replay) -> None:
    """Set `within` of the retrain automations (wall-clock dedupe) to `opts.automation_within`."""
    within = rp.opts.automation_within
    if within is None:
        return
    try:
        changed = [a for dep in rp.retrain_dep_ids for a in rp.api.set_automation_within(dep, within)]
        rp.log(f"retrain automations {', '.join(changed) or '(none found)'}: within={within:g}s")
    except DemoError as exc:
        rp.log(f"warning: could not change the retrain automations' within ({exc}); keeping prefect.yaml's")


def _warmup(rp: Replay, warm: Any, champion: Champion, paths: DemoPaths) -> dict[str, Any]:
    """Ingest the warm-up weeks, let the automations react, then make sure there is a champion."""
    opts = rp.opts
    t0 = time.monotonic()
    since = datetime.now(UTC)
    warm_path = write_batch(warm, rp.batches_dir / f"warmup-{rp.start_week - opts.warmup_weeks:03d}.csv")
    rp.log(
        f"{rp.model} warm-up: ingesting {len(warm)} rows ({opts.warmup_weeks} weeks before week {rp.start_week})"
    )
    if _ingest(rp, warm_path) != "COMPLETED":
        raise DemoError(f"the warm-up batch {warm_path} was not ingested; see the log above")
    retrains = rp.settle(since).retrains
    if champion.refresh() is None:
        rp.log(f"warm-up: training the first champion ({rp.names['retrain']}, reason=manual, force)")
        retrains += rp.retrain("manual", force=True)
    champion.refresh()
    if champion.version is None:
        raise DemoError(
            "no champion after the warm-up; see the worker log in " + str(paths.demo_home / "logs")
        )
    return {
        "rows": len(warm),
        "weeks": opts.warmup_weeks,
        "champion_version": champion.version,
        "retrains": retrains,
        "seconds": round(time.monotonic() - t0, 1),
    }


def _replay_week(rp: Replay, i: int, frame: Any, champion: Champion, spec: Any) -> dict[str, Any]:
    """Score the week with the champion, ingest it, let the chain settle; every Nth week a scheduled retrain."""
    opts = rp.opts
    t_week = time.monotonic()
    week_no = rp.start_week + i
    row: dict[str, Any] = {
        "model": rp.model,
        "week": week_no,
        "index": i + 1,
        "start": str(frame["timestamp"].iloc[0].date()),
        "rows": len(frame),
        "champion_before": champion.version,
        **champion.score(frame, spec),  # prequential: before its labels are trained on
    }
    since = datetime.now(UTC)
    ingest_state = _ingest(rp, write_batch(frame, rp.batches_dir / f"week-{week_no:03d}.csv"))
    s = rp.settle(since, expect_monitor=ingest_state == "COMPLETED")
    retrains = list(s.retrains)
    if opts.schedule_every and (i + 1) % opts.schedule_every == 0:
        retrains += rp.retrain("schedule")
    row.update(
        {
            "ingest": ingest_state,
            "drift_score": s.drift_score,
            "drift_detected": s.drift_detected,
            "performance_degraded": s.performance_degraded,
            "retrains": retrains,
            "unanswered_triggers": s.unanswered,
            "failed_runs": s.failed_runs,
            "shadow": _fresh_shadow(rp, s.shadow),
            "notifications": rp.notes.drain(rp.model) if rp.notes else [],
            "champion_version": champion.refresh(),
            "seconds": round(time.monotonic() - t_week, 1),
        }
    )
    return row


def _fresh_shadow(rp: Replay, decisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Shadow decisions no earlier step listed (step windows overlap by a second), tagged with the model."""
    fresh = [{**d, "model": rp.model} for d in decisions if d["event_id"] not in rp.shadow_seen]
    rp.shadow_seen.update(d["event_id"] for d in fresh)
    return fresh


def _ingest(rp: Replay, path: Path) -> str:
    """Ingest one batch file; returns the final state type (COMPLETED, FAILED, ...).

    "local" calls the ingest flow in this process (a real, tracked flow run that emits the real
    `data.ingested` event; it saves the worker's per-run process start, ~30 s on a busy machine).
    Monitor and retrain always run on the worker, started by automations.
    """
    opts = rp.opts
    if opts.ingest == "deployment":
        run = _run(rp.api, rp.names["ingest"], {"model": rp.model, "path": str(path)}, opts, fail_ok=True)
        return str(run.get("state_type"))
    import prefect.context

    prefect.context.refresh_global_settings_context()
    from prefect.events.worker import EventsWorker

    from flows.ingest import ingest

    try:
        ingest(model=rp.model, path=str(path))
        state = "COMPLETED"
    except Exception as exc:  # noqa: BLE001 (a rejected batch is part of the story, not a crash)
        rp.log(f"ingest of {path.name} failed: {exc}")
        state = "FAILED"
    with contextlib.suppress(Exception):
        EventsWorker.drain_all(timeout=30)
    return state


def _run(
    api: PrefectApi, deployment: str, params: dict[str, Any], opts: DemoOptions, fail_ok: bool = False
) -> dict[str, Any]:
    run_id = api.run_deployment(deployment, params)
    run = api.wait_run(run_id, opts.run_timeout)
    if run.get("state_type") != "COMPLETED" and not fail_ok:
        raise DemoError(
            f"{deployment} run {run.get('name')} ended {run.get('state_type')}: "
            f"{(run.get('state') or {}).get('message')}"
        )
    return run
