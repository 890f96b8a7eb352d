"""`evergreen demo`: replay Elec2 week by week through the real scheduler on a local stack.

Orchestration and I/O only; the report itself is built by the pure `evergreen.report`.

What runs where (see docs/demo.md):

- The demo owns ``<EVERGREEN_HOME>/demo/`` and wipes it at the start of every run (stopping a stack a
  previous ``--keep`` run left there, by the PIDs it recorded). That directory is the stack's home:
  Prefect DB, MLflow DB and artifacts, the git+DVC data registry, logs, batch files, and a demo copy of
  the model specs (``models/``) whose only change is ``triggers.cooldown`` (default ``1s``): the
  spec's wall-clock 6h cooldown would block every retrain of a replay that runs weeks in minutes.
  ``EVERGREEN_MODELS_DIR`` points the worker (and so every flow run) at that copy.
- Every flow runs on the worker, through deployments: ingest is started by the demo
  (``create_flow_run`` on ``ingest/elec2``); monitor is started by the ``data.ingested`` automation;
  drift/performance/volume retrains by their automations. Scheduled retrains are explicit
  ``retrain/elec2`` runs with ``reason=schedule`` every ``schedule_every`` replay weeks (the cron
  schedule runs on wall-clock time, which a replay outruns).
- Prequential accuracy: before a week is ingested, the current champion (``models:/elec2@champion``)
  scores it; those labels are used for training only afterwards.

No prefect import: the Prefect REST API over HTTP, like deployments/local.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

import stack
from stack import local
from stack import StackError

ACTIVE_STATES = {"SCHEDULED", "PENDING", "RUNNING", "CANCELLING", "PAUSED"}
TRIGGER_EVENTS = {"evergreen.drift.detected": "drift", "evergreen.performance.degraded": "performance"}
OUTCOME_EVENTS = {
    "evergreen.model.promoted": "promoted",
    "evergreen.model.rejected": "rejected",
    "evergreen.retrain.skipped": "skipped",
}
VOLUME_LABEL = "evergreen.volume-threshold-met"

Log = Callable[[str], None]
OnWeek = Callable[[dict[str, Any]], None]


class DemoError(RuntimeError):
    """The demo could not run (stack, deployment or a flow failed in a way the replay cannot skip)."""


@dataclass
class DemoOptions:
    model: str = "elec2"
    weeks: int = 30
    start_week: int = 44  # first replayed week, counted from 1996-05-07 (see docs/demo.md)
    warmup_weeks: int = 8  # ingested before the replay; the first champion trains on them
    schedule_every: int = 4  # explicit reason=schedule retrain every N replay weeks; 0 = never
    cooldown: str = "1s"  # the demo spec copy's triggers.cooldown
    keep: bool = False  # leave the stack (and its UIs) running
    week_timeout: float = 900.0  # seconds for one week's chain to settle
    trigger_grace: float = 30.0  # seconds a trigger event may take to become a retrain run
    run_timeout: float = 900.0  # seconds for one explicitly started flow run
    ingest: str = "local"  # "local": the ingest flow runs in this process; "deployment": on the worker
    # `within` of the retrain automations on the demo stack; None keeps prefect.yaml's (600 s of wall
    # clock: at about a minute per simulated week that allows one drift retrain per ~10 weeks)
    automation_within: float | None = 0.0


@dataclass
class DemoPaths:
    home: Path  # EVERGREEN_HOME of the user
    demo_home: Path  # EVERGREEN_HOME of the demo stack (wiped per run)
    report: Path

    @classmethod
    def from_settings(cls) -> DemoPaths:
        from evergreen.settings import get_settings

        s = get_settings()
        return cls(home=s.home_abs, demo_home=s.home_abs / "demo", report=s.reports_dir / "demo.html")


@dataclass
class DemoResult:
    weeks: list[dict[str, Any]] = field(default_factory=list)
    versions: list[dict[str, Any]] = field(default_factory=list)
    warmup: dict[str, Any] = field(default_factory=dict)
    report: str = ""
    urls: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    kept: bool = False
    demo_home: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _noop(_: Any) -> None:
    return None


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


# --------------------------------------------------------------------------------------- Prefect REST


class PrefectApi:
    """The few Prefect REST calls the demo needs (the server's own API; no client-side settings)."""

    def __init__(self, api_url: str) -> None:
        self.api = api_url.rstrip("/")
        self._deployments: dict[str, str] = {}

    def _post(self, path: str, body: object, timeout: float = 15.0) -> Any:
        last: tuple[int, object] = (0, None)
        for _ in range(5):
            last = stack.http_post_json(f"{self.api}{path}", body, timeout=timeout)
            if last[0] in (200, 201):
                return last[1]
            time.sleep(1.0)
        raise DemoError(f"POST {path} failed with HTTP {last[0]}")

    def _get(self, path: str) -> Any:
        status = 0
        for _ in range(5):
            status, body = stack.http_get(f"{self.api}{path}", timeout=15.0)
            if status == 200:
                return json.loads(body)
            time.sleep(1.0)
        raise DemoError(f"GET {path} failed with HTTP {status}")

    def deployment_id(self, name: str) -> str:
        if name not in self._deployments:
            self._deployments[name] = str(self._get(f"/deployments/name/{name}")["id"])
        return self._deployments[name]

    def run_deployment(self, name: str, parameters: dict[str, Any]) -> str:
        body = {"parameters": parameters, "state": {"type": "SCHEDULED"}}
        return str(self._post(f"/deployments/{self.deployment_id(name)}/create_flow_run", body)["id"])

    def _put(self, path: str, body: object) -> None:
        import urllib.error
        import urllib.request

        req = urllib.request.Request(
            f"{self.api}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="PUT",
        )
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:  # noqa: S310 (loopback URL)
                resp.read()
        except urllib.error.HTTPError as exc:
            raise DemoError(f"PUT {path} failed with HTTP {exc.code}: {exc.read()[:500]!r}") from exc

    def set_automation_within(self, deployment_id: str, within: float) -> list[str]:
        """Set `within` on every event-trigger automation that runs `deployment_id`; their names."""
        changed = []
        for auto in self._post("/automations/filter", {"limit": 200}) or []:
            trig = auto.get("trigger") or {}
            runs_it = any(a.get("deployment_id") == deployment_id for a in auto.get("actions") or [])
            if not runs_it or trig.get("type") != "event":
                continue
            trig["within"] = within
            keys = (
                "name",
                "description",
                "enabled",
                "tags",
                "trigger",
                "actions",
                "actions_on_trigger",
                "actions_on_resolve",
            )
            self._put(f"/automations/{auto['id']}", {k: auto[k] for k in keys if k in auto})
            changed.append(str(auto.get("name")))
        return changed

    def flow_run(self, run_id: str) -> dict[str, Any]:
        return dict(self._get(f"/flow_runs/{run_id}"))

    def wait_run(self, run_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            run = self.flow_run(run_id)
            if run.get("state_type") not in ACTIVE_STATES:
                return run
            if time.monotonic() > deadline:
                raise DemoError(f"flow run {run_id} still {run.get('state_type')} after {timeout:.0f}s")
            time.sleep(1.0)

    def flow_runs(self, deployment_ids: list[str], since: datetime) -> list[dict[str, Any]]:
        body = {
            "flow_runs": {
                "deployment_id": {"any_": deployment_ids},
                "expected_start_time": {
                    "after_": _iso(since - timedelta(seconds=5)),
                    "before_": _iso(datetime.now(UTC) + timedelta(minutes=2)),
                },
            },
            "limit": 200,
        }
        return list(self._post("/flow_runs/filter", body) or [])

    def events(self, since: datetime) -> list[dict[str, Any]]:
        body = {
            "filter": {
                "occurred": {
                    "since": _iso(since - timedelta(seconds=1)),
                    "until": _iso(datetime.now(UTC) + timedelta(minutes=5)),
                },
                "event": {"prefix": ["evergreen."]},
                "order": "ASC",
            },
            "limit": 50,  # the server's maximum page size
        }
        page = self._post("/events/filter", body) or {}
        out = list(page.get("events") or [])
        nxt = page.get("next_page")
        while nxt:
            status, text = stack.http_get(nxt, timeout=15.0)
            if status != 200:
                break
            page = json.loads(text)
            out += page.get("events") or []
            nxt = page.get("next_page")
        return out


# ----------------------------------------------------------------------------------------- the stack


def demo_models_dir(project_root: Path, demo_home: Path, cooldown: str) -> Path:
    """A copy of models/*.yaml under the demo home with `triggers.cooldown` replaced."""
    from evergreen.settings import get_settings

    src = get_settings().models_dir
    src = src if src.is_absolute() else project_root / src
    dst = demo_home / "models"
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.glob("*.yaml")):
        doc = yaml.safe_load(f.read_text()) or {}
        doc.setdefault("triggers", {})["cooldown"] = cooldown
        header = f"# demo copy of {f} (evergreen demo): triggers.cooldown = {cooldown}\n"
        (dst / f.name).write_text(header + yaml.safe_dump(doc, sort_keys=False))
    return dst


def stop_previous(demo_home: Path, log: Log = _noop) -> None:
    """Stop a stack a previous `evergreen demo --keep` left in `demo_home` (by recorded PIDs)."""
    if local.load_state(demo_home).get("services"):
        log(f"stopping the previous demo stack recorded in {demo_home}")
        cfg = local.StackConfig(home=demo_home)
        local.down(cfg, progress=log)


def reset_demo_home(demo_home: Path, log: Log = _noop) -> None:
    stop_previous(demo_home, log)
    if demo_home.exists():
        shutil.rmtree(demo_home)
    demo_home.mkdir(parents=True)


def _pick_port(port: int, setting: str, log: Log) -> int:
    if not stack.port_in_use(port):
        return port
    new = stack.free_port()
    log(f"port {port} ({setting}) is taken, probably by `evergreen up`; the demo stack uses {new}")
    return new


DEMO_ENV_KEYS = (
    "EVERGREEN_HOME",
    "EVERGREEN_MODELS_DIR",
    "EVERGREEN_DATA_REPO",
    "EVERGREEN_DVC_REMOTE",
    "EVERGREEN_PREFECT_PORT",
    "EVERGREEN_MLFLOW_PORT",
    "EVERGREEN_MLFLOW_ARTIFACTS_DESTINATION",
    "EVERGREEN_MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_URI",
    "PREFECT_API_URL",
    "PREFECT_HOME",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR",
)


@contextlib.contextmanager
def demo_environment(paths: DemoPaths, models_dir: Path, log: Log):
    """os.environ for the demo stack (inherited by the worker and its flow runs); restored afterwards."""
    from evergreen.settings import get_settings

    s = get_settings()
    saved = {k: os.environ.get(k) for k in DEMO_ENV_KEYS}
    try:
        for k in (
            "EVERGREEN_DATA_REPO",
            "EVERGREEN_DVC_REMOTE",
            "EVERGREEN_MLFLOW_ARTIFACTS_DESTINATION",
            "EVERGREEN_MLFLOW_TRACKING_URI",
            "MLFLOW_TRACKING_URI",
            "PREFECT_API_URL",
        ):
            os.environ.pop(k, None)
        os.environ["EVERGREEN_HOME"] = str(paths.demo_home)
        os.environ["EVERGREEN_MODELS_DIR"] = str(models_dir)
        os.environ["EVERGREEN_PREFECT_PORT"] = str(_pick_port(s.prefect_port, "EVERGREEN_PREFECT_PORT", log))
        os.environ["EVERGREEN_MLFLOW_PORT"] = str(_pick_port(s.mlflow_port, "EVERGREEN_MLFLOW_PORT", log))
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ---------------------------------------------------------------------------------------------- data


def replay_batches(opts: DemoOptions, project_root: Path) -> tuple[Any, list[Any]]:
    """(warm-up frame, [replay week frames]) sliced from the Elec2 seed."""
    import pandas as pd

    from evergreen.datasets import prepare_elec2, weekly_batches

    frame = prepare_elec2(project_root / "seeds" / "elec2" / "electricity.csv")
    weeks = weekly_batches(frame, "timestamp")
    first = opts.start_week - opts.warmup_weeks
    if first < 0 or opts.start_week + opts.weeks > len(weeks):
        raise DemoError(
            f"--start-week {opts.start_week} with {opts.warmup_weeks} warm-up weeks and --weeks {opts.weeks} "
            f"does not fit Elec2's {len(weeks)} weeks"
        )
    warm = pd.concat(weeks[first : opts.start_week], ignore_index=True)
    return warm, weeks[opts.start_week : opts.start_week + opts.weeks]


def write_batch(frame: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S", lineterminator="\n")
    return path


# ------------------------------------------------------------------------------------------ registry


class Champion:
    """The current champion, loaded once per version, for prequential scoring."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.version: str | None = None
        self._pipe: Any = None

    def refresh(self) -> str | None:
        from evergreen.settings import get_settings
        from adapters import mlflow_registry as model_registry

        champ = model_registry.get_champion(model_registry.client(get_settings()), self.model)
        if champ is None:
            self.version, self._pipe = None, None
        elif champ.version != self.version:
            self._pipe = model_registry.load_sklearn(f"models:/{self.model}@champion")
            self.version = champ.version
        return self.version

    def accuracy(self, frame: Any, spec: Any) -> float | None:
        from evergreen import training
        from evergreen.metrics import metric_value

        if self._pipe is None or frame.empty:
            return None
        scores = training.predict_scores(self._pipe, frame, spec.feature_names)
        return round(metric_value("accuracy", training.labels(frame, spec), scores), 4)


def collect_versions(model: str) -> list[dict[str, Any]]:
    """Every registered version with its lineage tags and gate report (oldest first)."""
    from evergreen.settings import get_settings
    from adapters import mlflow_registry as model_registry

    settings = get_settings()
    cl = model_registry.client(settings)
    out = []
    for mv in sorted(cl.search_model_versions(f"name='{model}'"), key=lambda m: int(m.version)):
        tags = dict(mv.tags)
        try:
            gate_md = model_registry.load_artifact_text(settings, mv.run_id, "gate_report.md")
        except Exception:  # noqa: BLE001 (a report without a gate report still shows the tag)
            gate_md = ""
        passed = tags.get("gate_passed") == "true"
        out.append(
            {
                "version": str(mv.version),
                "reason": tags.get("reason", ""),
                "status": "promoted" if passed else "rejected",
                "run_id": mv.run_id,
                "tags": tags,
                "gate_report": gate_md,
            }
        )
    return out


# ----------------------------------------------------------------------------------------- one week


@dataclass
class Settle:
    """What happened between `since` and the moment nothing was left running."""

    drift_score: float | None = None
    drift_detected: bool = False
    performance_degraded: bool = False
    monitor_seen: bool = False
    retrains: list[dict[str, Any]] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)  # trigger events that never became a run
    failed_runs: list[str] = field(default_factory=list)


def settle(
    api: PrefectApi,
    dep_ids: list[str],
    since: datetime,
    opts: DemoOptions,
    expect_monitor: bool = True,
    expect_untriggered: int = 0,
) -> Settle:
    """Wait until the event chain that started at `since` has finished.

    Settled when: the monitor's `drift.measured` event arrived (if expected), no flow run of the
    demo's deployments is scheduled/pending/running, and each trigger event either has a retrain
    outcome event (promoted/rejected/skipped carrying its id), a finished retrain run, or has waited
    `trigger_grace` seconds without producing one (an automation may deduplicate within its window).
    `expect_untriggered`: outcome events without a trigger id to wait for (explicitly started
    retrains, whose events may reach the API a moment after their run finished), up to the grace.
    """
    t_begin = time.monotonic()
    first_seen: dict[str, float] = {}
    deadline = time.monotonic() + opts.week_timeout
    while True:
        events = api.events(since)
        runs = api.flow_runs(dep_ids, since)
        out = Settle()
        triggers: dict[str, str] = {}
        outcomes: dict[str, dict[str, Any]] = {}
        for ev in events:
            name, payload = ev.get("event"), ev.get("payload") or {}
            if name == "evergreen.drift.measured":
                out.monitor_seen = True
                if payload.get("drift_score") is not None:
                    out.drift_score = round(float(payload["drift_score"]), 4)
                out.drift_detected = out.drift_detected or bool(payload.get("drift_detected"))
                out.performance_degraded = out.performance_degraded or bool(
                    payload.get("performance_degraded")
                )
            elif name in TRIGGER_EVENTS:
                triggers[str(ev["id"])] = TRIGGER_EVENTS[name]
            elif name == "evergreen.data.ingested" and (ev.get("resource") or {}).get(VOLUME_LABEL) == "true":
                triggers[str(ev["id"])] = "volume"
            elif name in OUTCOME_EVENTS:
                key = str(payload.get("trigger_event_id") or f"run:{ev['id']}")
                outcomes[key] = {
                    "status": OUTCOME_EVENTS[name],
                    "version": str(payload.get("version") or ""),
                    "reason": str(payload.get("reason") or payload.get("requested_reason") or ""),
                    "trigger_event_id": str(payload.get("trigger_event_id") or ""),
                }
        active = [r for r in runs if r.get("state_type") in ACTIVE_STATES]
        finished_by_trigger = {
            str((r.get("parameters") or {}).get("trigger_event_id")): r
            for r in runs
            if r.get("state_type") not in ACTIVE_STATES
            and (r.get("parameters") or {}).get("trigger_event_id")
        }
        now = time.monotonic()
        waiting = []
        for tid, reason in triggers.items():
            first_seen.setdefault(tid, now)
            if tid in outcomes:
                continue
            run = finished_by_trigger.get(tid)
            if run is not None:
                # its outcome event can reach the API a moment after the run ends; after the grace,
                # a run without one failed or crashed
                if _ended_long_ago(run, opts.trigger_grace):
                    out.failed_runs.append(f"{run.get('name')} ({run.get('state_type')})")
                else:
                    waiting.append(tid)
                continue
            if now - first_seen[tid] < opts.trigger_grace:
                waiting.append(tid)
            else:
                out.unanswered.append(reason)
        seen_versions: set[str] = set()
        out.retrains = []
        for k, o in outcomes.items():
            if o["version"] and o["version"] in seen_versions:
                continue  # one row per registered version
            seen_versions.add(o["version"])
            out.retrains.append({**o, "reason": o["reason"] or triggers.get(k, "")})
        # drift.measured says what the monitor emitted next; those events may be persisted a moment later
        if out.monitor_seen:
            first_seen.setdefault("monitor", now)
            expected = {"drift"} if out.drift_detected else set()
            expected |= {"performance"} if out.performance_degraded else set()
            if expected - set(triggers.values()) and now - first_seen["monitor"] < opts.trigger_grace:
                waiting.append("monitor-events")
        untriggered = sum(1 for k in outcomes if k.startswith("run:"))
        if untriggered < expect_untriggered and now - t_begin < opts.trigger_grace + opts.run_timeout:
            if not active and now - t_begin > opts.trigger_grace and _all_finished_long_ago(runs, opts):
                pass  # the run finished without an outcome event (failed): stop waiting
            else:
                waiting.append("explicit-run")
        if (out.monitor_seen or not expect_monitor) and not active and not waiting:
            return out
        if now > deadline:
            raise DemoError(
                f"week did not settle within {opts.week_timeout:.0f}s: {len(active)} runs active "
                f"({', '.join(str(r.get('name')) for r in active)}), {len(waiting)} triggers waiting"
            )
        time.sleep(1.0)


def _ended_long_ago(run: dict[str, Any], seconds: float) -> bool:
    """True when the run has an end time more than `seconds` ago."""
    end = run.get("end_time")
    if not end:
        return False
    try:
        ended = datetime.fromisoformat(str(end).replace("Z", "+00:00"))
    except ValueError:
        return False
    return (datetime.now(UTC) - ended).total_seconds() >= seconds


def _all_finished_long_ago(runs: list[dict[str, Any]], opts: DemoOptions) -> bool:
    """True when every run's end time is more than `trigger_grace` seconds ago."""
    return all(_ended_long_ago(r, opts.trigger_grace) for r in runs)


# ------------------------------------------------------------------------------------------- the run


def run_demo(
    opts: DemoOptions, *, log: Log = _noop, on_week: OnWeek = _noop, paths: DemoPaths | None = None
) -> DemoResult:
    """Bring the demo stack up, replay, write the report; stop the stack unless `opts.keep`."""
    t_start = time.monotonic()
    paths = paths or DemoPaths.from_settings()
    root = local.find_project_root()
    result = DemoResult(demo_home=str(paths.demo_home), options=asdict(opts))
    reset_demo_home(paths.demo_home, log)
    models_dir = demo_models_dir(root, paths.demo_home, opts.cooldown)
    with demo_environment(paths, models_dir, log):
        cfg = local.StackConfig.from_settings()
        cfg.worker_query_seconds = min(cfg.worker_query_seconds, 1.0)
        started = False
        try:
            log(f"starting the demo stack in {paths.demo_home}")
            st = local.up(cfg, deploy=True, progress=log)
            started = True
            result.seconds["stack_up"] = round(time.monotonic() - t_start, 1)
            os.environ.update(st["env"])
            os.environ["PREFECT_HOME"] = str(paths.demo_home / "prefect-client")
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # keeps the live table readable
            result.urls = {
                "prefect_ui": st["urls"]["prefect_ui"],
                "mlflow_ui": st["urls"]["mlflow_ui"],
                "env_file": str(st.get("env_file", "")),
            }
            _replay(opts, paths, root, result, log, on_week)
            log("collecting model versions, gate reports and lineage")
            result.versions = collect_versions(opts.model)
            result.report = str(write_report(result, paths.report))
            log(f"report written to {result.report}")
        finally:
            if started and not opts.keep:
                log("stopping the demo stack (use --keep to leave the UIs up)")
                with contextlib.suppress(StackError, OSError):
                    local.down(cfg, progress=log)
            elif started:
                result.kept = True
    result.seconds["total"] = round(time.monotonic() - t_start, 1)
    return result


def _replay(
    opts: DemoOptions, paths: DemoPaths, root: Path, result: DemoResult, log: Log, on_week: OnWeek
) -> None:
    from evergreen.spec import load_spec

    spec = load_spec(opts.model, Path(os.environ["EVERGREEN_MODELS_DIR"]))
    api = PrefectApi(os.environ["PREFECT_API_URL"])
    names = {k: f"{k}/{opts.model}" for k in ("ingest", "monitor", "retrain")}
    dep_ids = [api.deployment_id(n) for n in names.values()]
    warm, weeks = replay_batches(opts, root)
    if opts.automation_within is not None:
        try:
            changed = api.set_automation_within(api.deployment_id(names["retrain"]), opts.automation_within)
            log(
                f"retrain automations {', '.join(changed) or '(none found)'}: within={opts.automation_within:g}s"
            )
        except DemoError as exc:
            log(f"warning: could not change the retrain automations' within ({exc}); keeping prefect.yaml's")
    batches_dir = paths.demo_home / "batches"

    # warm-up: ingest, let automations react, then make sure there is a champion
    t0 = time.monotonic()
    since = datetime.now(UTC)
    warm_path = write_batch(warm, batches_dir / f"warmup-{opts.start_week - opts.warmup_weeks:03d}.csv")
    log(f"warm-up: ingesting {len(warm)} rows ({opts.warmup_weeks} weeks before week {opts.start_week})")
    if _ingest(api, names["ingest"], opts, warm_path, log) != "COMPLETED":
        raise DemoError(f"the warm-up batch {warm_path} was not ingested; see the log above")
    warm_settle = settle(api, dep_ids, since, opts)
    champion = Champion(opts.model)
    manual = None
    if champion.refresh() is None:
        log("warm-up: training the first champion (retrain/elec2, reason=manual, force)")
        since = datetime.now(UTC)
        _run(api, names["retrain"], {"model": opts.model, "reason": "manual", "force": True}, opts)
        manual = settle(api, dep_ids, since, opts, expect_monitor=False, expect_untriggered=1)
    champion.refresh()
    if champion.version is None:
        raise DemoError(
            "no champion after the warm-up; see the worker log in " + str(paths.demo_home / "logs")
        )
    result.warmup = {
        "rows": len(warm),
        "weeks": opts.warmup_weeks,
        "champion_version": champion.version,
        "retrains": warm_settle.retrains + (manual.retrains if manual else []),
        "seconds": round(time.monotonic() - t0, 1),
    }
    log(f"warm-up done in {result.warmup['seconds']}s: champion v{champion.version}")

    for i, frame in enumerate(weeks):
        t_week = time.monotonic()
        week_no = opts.start_week + i
        row: dict[str, Any] = {
            "week": week_no,
            "index": i + 1,
            "start": str(frame["timestamp"].iloc[0].date()),
            "rows": len(frame),
            "champion_before": champion.version,
            "accuracy": champion.accuracy(frame, spec),
        }
        since = datetime.now(UTC)
        path = write_batch(frame, batches_dir / f"week-{week_no:03d}.csv")
        ingest_state = _ingest(api, names["ingest"], opts, path, log)
        s = settle(api, dep_ids, since, opts, expect_monitor=ingest_state == "COMPLETED")
        retrains = list(s.retrains)
        if opts.schedule_every and (i + 1) % opts.schedule_every == 0:
            since = datetime.now(UTC)
            _run(api, names["retrain"], {"model": opts.model, "reason": "schedule"}, opts, fail_ok=True)
            retrains += settle(api, dep_ids, since, opts, expect_monitor=False, expect_untriggered=1).retrains
        row.update(
            {
                "ingest": ingest_state,
                "drift_score": s.drift_score,
                "drift_detected": s.drift_detected,
                "performance_degraded": s.performance_degraded,
                "retrains": retrains,
                "unanswered_triggers": s.unanswered,
                "failed_runs": s.failed_runs,
                "champion_version": champion.refresh(),
                "seconds": round(time.monotonic() - t_week, 1),
            }
        )
        result.weeks.append(row)
        on_week(row)


def _ingest(api: PrefectApi, deployment: str, opts: DemoOptions, path: Path, log: Log) -> str:
    """Ingest one batch file; returns the final state type (COMPLETED, FAILED, ...).

    "local" calls the ingest flow in this process (a real, tracked flow run that emits the real
    `data.ingested` event; it saves the worker's per-run process start, ~30 s on a busy machine).
    Monitor and retrain always run on the worker, started by automations.
    """
    if opts.ingest == "deployment":
        run = _run(api, deployment, {"model": opts.model, "path": str(path)}, opts, fail_ok=True)
        return str(run.get("state_type"))
    import prefect.context

    prefect.context.refresh_global_settings_context()
    from prefect.events.worker import EventsWorker

    from flows.ingest import ingest

    try:
        ingest(model=opts.model, path=str(path))
        state = "COMPLETED"
    except Exception as exc:  # noqa: BLE001 (a rejected batch is part of the story, not a crash)
        log(f"ingest of {path.name} failed: {exc}")
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


def write_report(result: DemoResult, path: Path) -> Path:
    from evergreen.report import build_report

    meta = {
        "replayed weeks": f"{result.weeks[0]['week']}-{result.weeks[-1]['week']} "
        f"({result.weeks[0]['start']} to {result.weeks[-1]['start']})"
        if result.weeks
        else "-",
        "warm-up": f"{result.warmup.get('rows')} rows, first champion v{result.warmup.get('champion_version')}",
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "demo home": result.demo_home,
    }
    html = build_report(result.weeks, result.versions, title="Evergreen demo: elec2 replay", meta=meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    (path.with_suffix(".json")).write_text(json.dumps(result.to_dict(), indent=2, default=str))
    return path
