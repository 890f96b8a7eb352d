"""The demo run: stack up, warm-up, replay week by week, report, stack down (unless --keep)."""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from demo import timing
from demo.data import replay_batches
from demo.environment import demo_environment, demo_models_dir, reset_demo_home
from demo.options import DemoError, DemoOptions, DemoPaths, DemoResult, Log, OnWeek, noop
from demo.prefect_rest import PrefectApi
from demo.registry import Champion, collect_versions
from demo.release import DemoNotifications, notified_events, spec_overrides
from demo.replay import Model, Replay, replay_weeks, warmup_row, warmups
from demo.report import write_report
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
        _preload()
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


# What this process imports for its first ingest, scoring and the notification setup. `_preload` imports
# them in a thread while the stack starts (this process only waits for health checks then), so the
# warm-up ingest does not pay them after the stack is up (35 s of its 42 s on a loaded 2-core machine).
PRELOAD = (
    "prefect.events.worker",
    "flows.ingest",
    "adapters.prefect_notify",
    "adapters.mlflow_registry",
    "great_expectations",
    "mlflow.pyfunc",
    "lightgbm",
    "evergreen.training",
)


def _preload() -> threading.Thread:
    def run() -> None:
        for name in PRELOAD:
            with contextlib.suppress(Exception):
                importlib.import_module(name)

    t = threading.Thread(target=run, name="demo-preload", daemon=True)
    t.start()
    return t


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
) -> Model:
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
    return Model(rp, spec, Champion(model), warm, weeks)


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
    def live(row: dict[str, Any]) -> None:
        result.seconds.setdefault("first_row", round(time.monotonic() - t_start, 1))
        on_week(row)

    for m, warmup in zip(models, warmups(models, paths, live), strict=True):
        log(f"{m.rp.model} warm-up done in {warmup['seconds']}s: champion v{m.champion.version}")
        live(warmup_row(m, warmup))
        if m.rp.model == opts.model:
            result.warmup = warmup
        else:
            result.side = {"model": m.rp.model, "weeks": [], "versions": [], "warmup": warmup}
    for i in range(max(len(m.weeks) for m in models)):
        for row in replay_weeks([m for m in models if i < len(m.weeks)], i):
            (result.weeks if row["model"] == opts.model else result.side["weeks"]).append(row)
            result.shadow_decisions += row["shadow"]
            result.seconds.setdefault("first_week_row", round(time.monotonic() - t_start, 1))
            live(row)
    if notes is not None:
        expected = len(api.events(t0, names=sorted(notified_events(opts))))
        result.notifications = notes.finish(expected, opts.notify_wait)
        result.release = dict(notes.info)
    result.timing = _timing(api, models, t0, log)


def _timing(api: PrefectApi, models: list[Model], since: datetime, log: Log) -> dict[str, Any]:
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
