"""The demo run: stack up, warm-up, replay week by week, report, stack down (unless --keep)."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from demo import timing
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
    models_dir = demo_models_dir(
        root, paths.demo_home, opts.cooldown, spec_overrides(opts), volume_share=opts.volume_share
    )
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
            _replay(opts, paths, root, result, log, on_week, notes, t_start)
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
        out = settle(
            self.api, self.dep_ids, since, self.opts, expect_monitor, expect_untriggered, model=self.model
        )
        out.retrains = unreported(out.retrains, self.reported)
        return out

    def retrain(self, reason: str, **extra: Any) -> list[dict[str, Any]]:
        """An explicit retrain run (no trigger event), and the outcome rows it produced."""
        return self.finish_retrain(*self.start_retrain(reason, **extra))

    def start_retrain(self, reason: str, **extra: Any) -> tuple[datetime, str, str]:
        """Create an explicit retrain run (no trigger event); (since, run id, reason) for `finish_retrain`."""
        since = datetime.now(UTC)
        params = {"model": self.model, "reason": reason, **extra}
        return since, self.api.run_deployment(self.names["retrain"], params), reason

    def finish_retrain(self, since: datetime, run_id: str, reason: str) -> list[dict[str, Any]]:
        """Wait for a run `start_retrain` created; the outcome rows it produced."""
        _wait(self.api, self.names["retrain"], run_id, self.opts, fail_ok=reason != "manual")
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
    t_start: float = 0.0,
) -> None:
    api = PrefectApi(os.environ["PREFECT_API_URL"])
    t0 = datetime.now(UTC)
    models = [_prepare(opts, api, paths, root, log, opts.model, opts.start_week, opts.weeks, notes)]
    if opts.side_model:
        n = opts.weeks if opts.side_weeks is None else opts.side_weeks
        models.append(_prepare(opts, api, paths, root, log, opts.side_model, opts.side_start_week, n, notes))
    for m in models:
        _shrink_automation_window(m.rp)
    # the models' chains run side by side on the worker: each step starts for every model, then waits
    # for each (a model's settle sees only its own events and runs)
    for m, warmup in zip(models, _warmups(models, paths), strict=True):
        log(f"{m.rp.model} warm-up done in {warmup['seconds']}s: champion v{m.champion.version}")
        if m.rp.model == opts.model:
            result.warmup = warmup
        else:
            result.side = {"model": m.rp.model, "weeks": [], "versions": [], "warmup": warmup}
    for i in range(max(len(m.weeks) for m in models)):
        for row in _replay_weeks([m for m in models if i < len(m.weeks)], i):
            (result.weeks if row["model"] == opts.model else result.side["weeks"]).append(row)
            result.shadow_decisions += row["shadow"]
            if "first_row" not in result.seconds:
                result.seconds["first_row"] = round(time.monotonic() - t_start, 1)
            on_week(row)
    if notes is not None:
        expected = len(api.events(t0, names=sorted(notified_events(opts))))
        result.notifications = notes.finish(expected, opts.notify_wait)
        result.release = dict(notes.info)
    result.timing = _timing(api, models, t0, log)


def _timing(api: PrefectApi, models: list[_Model], since: datetime, log: Log) -> dict[str, Any]:
    """Each flow run's phases (queued, process start-up, run) and their summary per kind (demo/timing.py)."""
    kinds = {}
    for m in models:
        kinds[api.deployment_id(m.rp.names["ingest"])] = "ingest"
        kinds[api.deployment_id(m.rp.names["monitor"])] = "monitor"
        kinds.update(dict.fromkeys(m.rp.retrain_dep_ids, "retrain"))
    try:
        runs = timing.collect(api, kinds, since)
    except DemoError as exc:
        log(f"warning: no flow-run timing ({exc})")
        return {}
    summary = timing.summarize(runs)
    for line in timing.summary_lines(summary):
        log(f"timing: {line}")
    return {"summary": summary, "runs": runs}


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


def _warmups(models: list[_Model], paths: DemoPaths) -> list[dict[str, Any]]:
    """Ingest each model's warm-up weeks, let the automations react, then make sure there are champions."""
    t0 = time.monotonic()
    started = []
    for m in models:
        rp, opts = m.rp, m.rp.opts
        since = datetime.now(UTC)
        path = write_batch(m.warm, rp.batches_dir / f"warmup-{rp.start_week - opts.warmup_weeks:03d}.csv")
        rp.log(
            f"{rp.model} warm-up: ingesting {len(m.warm)} rows ({opts.warmup_weeks} weeks before week {rp.start_week})"
        )
        if _ingest(rp, path) != "COMPLETED":
            raise DemoError(f"the warm-up batch {path} was not ingested; see the log above")
        started.append(since)
    retrains = [m.rp.settle(since).retrains for m, since in zip(models, started, strict=True)]
    manual = {}
    for m in models:
        if m.champion.refresh() is None:
            m.rp.log(f"warm-up: training the first champion ({m.rp.names['retrain']}, reason=manual, force)")
            manual[m.rp.model] = m.rp.start_retrain("manual", force=True)
    out = []
    for m, rows in zip(models, retrains, strict=True):
        if m.rp.model in manual:
            rows += m.rp.finish_retrain(*manual[m.rp.model])
        if m.champion.refresh() is None:
            raise DemoError(
                "no champion after the warm-up; see the worker log in " + str(paths.demo_home / "logs")
            )
        out.append(
            {
                "rows": len(m.warm),
                "weeks": m.rp.opts.warmup_weeks,
                "champion_version": m.champion.version,
                "retrains": rows,
                "seconds": round(time.monotonic() - t0, 1),
            }
        )
    return out


def _replay_weeks(models: list[_Model], i: int) -> list[dict[str, Any]]:
    """Replay week `i` of every model: score and ingest each batch, then let each chain settle (the
    chains overlap on the worker); every Nth week a scheduled retrain per model, also side by side."""
    t_week = time.monotonic()
    begun = [(m, *_score_and_ingest(m, i)) for m in models]
    settled = [
        (m, row, m.rp.settle(since, expect_monitor=row["ingest"] == "COMPLETED")) for m, row, since in begun
    ]
    opts = models[0].rp.opts
    scheduled = {}
    if opts.schedule_every and (i + 1) % opts.schedule_every == 0:
        scheduled = {m.rp.model: m.rp.start_retrain("schedule") for m in models}
    rows = []
    for m, row, s in settled:
        rp = m.rp
        retrains = list(s.retrains)
        if rp.model in scheduled:
            retrains += rp.finish_retrain(*scheduled[rp.model])
        row.update(
            {
                "drift_score": s.drift_score,
                "drift_detected": s.drift_detected,
                "performance_degraded": s.performance_degraded,
                "retrains": retrains,
                "unanswered_triggers": s.unanswered,
                "failed_runs": s.failed_runs,
                "shadow": _fresh_shadow(rp, s.shadow),
                "notifications": rp.notes.drain(rp.model) if rp.notes else [],
                "champion_version": m.champion.refresh(),
                "seconds": round(time.monotonic() - t_week, 1),
            }
        )
        rows.append(row)
    return rows


def _score_and_ingest(m: _Model, i: int) -> tuple[dict[str, Any], datetime]:
    """Score week `i` with the champion (prequential: before its labels are trained on), then ingest it;
    the row so far and when its chain started."""
    rp, frame = m.rp, m.weeks[i]
    week_no = rp.start_week + i
    row: dict[str, Any] = {
        "model": rp.model,
        "week": week_no,
        "index": i + 1,
        "start": str(frame["timestamp"].iloc[0].date()),
        "rows": len(frame),
        "champion_before": m.champion.version,
        **m.champion.score(frame, m.spec),
    }
    since, t0 = datetime.now(UTC), time.monotonic()
    row["ingest"] = _ingest(rp, write_batch(frame, rp.batches_dir / f"week-{week_no:03d}.csv"))
    row["ingest_seconds"] = round(time.monotonic() - t0, 1)
    return row, since


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
    return _wait(api, deployment, api.run_deployment(deployment, params), opts, fail_ok)


def _wait(
    api: PrefectApi, deployment: str, run_id: str, opts: DemoOptions, fail_ok: bool = False
) -> dict[str, Any]:
    run = api.wait_run(run_id, opts.run_timeout)
    if run.get("state_type") != "COMPLETED" and not fail_ok:
        raise DemoError(
            f"{deployment} run {run.get('name')} ended {run.get('state_type')}: "
            f"{(run.get('state') or {}).get('message')}"
        )
    return run
