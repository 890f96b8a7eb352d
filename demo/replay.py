"""One replay step for every model at once: the warm-ups, then each replay week.

Each step starts for every model (score, ingest, scheduled retrain), then waits for each model's chain
to settle; the chains run side by side on the worker, and a model's settle reads only its own events
and flow runs (demo/settle.py).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from demo.data import write_batch
from demo.options import DemoError, DemoOptions, DemoPaths, Log, OnWeek, noop
from demo.prefect_rest import PrefectApi
from demo.registry import Champion
from demo.release import DemoNotifications
from demo.settle import Settle, settle, unreported


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
class Model:
    """One replayed model: its replay state, spec, champion and weeks."""

    rp: Replay
    spec: Any
    champion: Champion
    warm: Any
    weeks: list[Any]


def warmup_row(m: Model, warmup: dict[str, Any] | None = None) -> dict[str, Any]:
    """The live table's warm-up row of a model: when its batch is ingested (`warmup` None), then done."""
    row: dict[str, Any] = {
        "model": m.rp.model,
        "phase": "warm-up",
        "index": 0,
        "week": f"{m.rp.start_week - m.rp.opts.warmup_weeks}-{m.rp.start_week - 1}",
        "start": str(m.warm["timestamp"].iloc[0].date()),
        "rows": len(m.warm),
        "retrains": [],
        "champion_version": None,
        "status": "ingested; monitor and retrains running",
    }
    if warmup is not None:
        row.update(retrains=warmup["retrains"], champion_version=warmup["champion_version"])
        row.update(status="", seconds=warmup["seconds"])
    return row


def warmups(models: list[Model], paths: DemoPaths, live: OnWeek = noop) -> list[dict[str, Any]]:
    """Ingest each model's warm-up weeks, let the automations react, then make sure there are champions.

    A model without a volume trigger gets its manual first retrain right after its ingest; another gets
    one only if the volume automation's retrain left no champion.

    `live` gets each model's warm-up row as soon as its batch is ingested (the live table's first rows).
    """
    t0 = time.monotonic()
    started = []
    early: set[str] = set()  # models whose manual first retrain started right after the ingest
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
        live({**warmup_row(m), "seconds": round(time.monotonic() - t0, 1)})
        if not m.spec.triggers.volume.enabled:  # no automation will train its first champion: start
            rp.log(f"warm-up: training the first champion ({rp.names['retrain']}, reason=manual, force)")
            rp.start_retrain("manual", force=True)  # beside the monitor, not after it
            early.add(rp.model)
    retrains = [
        m.rp.settle(since, expect_untriggered=int(m.rp.model in early)).retrains
        for m, since in zip(models, started, strict=True)
    ]
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


def replay_weeks(models: list[Model], i: int) -> list[dict[str, Any]]:
    """Replay week `i` of every model: score and ingest each batch, then let each chain settle (the
    chains overlap on the worker); every Nth week a scheduled retrain per model beside the chain."""
    t_week = time.monotonic()
    opts = models[0].rp.opts
    begun = [(m, *score_and_ingest(m, i)) for m in models]
    # a scheduled retrain starts beside the week's chain (a cron run does not wait for the monitor); its
    # outcome event (no trigger id) is one more thing the week's settle waits for
    due = bool(opts.schedule_every and (i + 1) % opts.schedule_every == 0)
    for m, _, _ in begun if due else []:
        m.rp.start_retrain("schedule")
    rows = []
    for m, row, since in begun:
        rp = m.rp
        s = rp.settle(since, expect_monitor=row["ingest"] == "COMPLETED", expect_untriggered=int(due))
        retrains = list(s.retrains)
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


def score_and_ingest(m: Model, i: int) -> tuple[dict[str, Any], datetime]:
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
