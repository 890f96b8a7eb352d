"""What the demo is asked to do (DemoOptions), where it writes (DemoPaths) and what it returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evergreen.spec_release import NotifyOn

Log = Callable[[str], None]
OnWeek = Callable[[dict[str, Any]], None]


class DemoError(RuntimeError):
    """The demo could not run (stack, deployment or a flow failed in a way the replay cannot skip)."""


def noop(_: Any) -> None:
    """The default log / on_week callback."""
    return None


@dataclass
class DemoOptions:
    model: str = "elec2"
    # the default replay (`make demo`): 3 weeks, drift -> retrain -> shadow -> decision; `evergreen demo
    # --full` replays 30 (docs/demo.md, "Measured duration")
    weeks: int = 3
    start_week: int = 48  # first replayed week, counted from 1996-05-07 (see docs/demo.md); --full: 44
    warmup_weeks: int = 8  # ingested before the replay; the first champion trains on them
    # explicit reason=schedule retrain every N replay weeks; 0 = never (the default replay: a scheduled
    # retrain beside a week's drift retrain trains the same rows twice; --full: every 4th week)
    schedule_every: int = 0
    # triggers.cooldown of the demo's spec copy; the shipped spec's wall-clock cooldown (27D for elec2)
    # would skip every retrain after the first of a replay that runs a simulated week a minute
    cooldown: str = "1s"
    # triggers.volume.min_new_share of the demo's spec copy (None keeps the spec's): the warm-up into an
    # empty registry meets it; replay weeks (elec2: 0.25 of the window every second week) do not, so they
    # do not start a volume retrain beside the week's drift retrain on the same rows
    volume_share: float | None = 0.9
    keep: bool = False  # leave the stack (and its UIs) running
    week_timeout: float = 900.0  # seconds for one week's chain to settle
    trigger_grace: float = 30.0  # seconds a trigger event may take to become a retrain run
    run_timeout: float = 900.0  # seconds for one explicitly started flow run
    ingest: str = "local"  # "local": the ingest flow runs in this process; "deployment": on the worker
    # `within` of the retrain automations on the demo stack; None keeps prefect.yaml's (600 s of wall
    # clock: at about a minute per simulated week that allows one drift retrain per ~10 weeks)
    automation_within: float | None = 0.0
    # a second model replayed side by side, week for week (None or "": elec2 alone)
    side_model: str | None = "bike_sharing"
    side_start_week: int = 20  # its first replayed week (bike sharing: 2011-05-21)
    # its replay weeks, side by side with the first ones of `weeks` (None: as many as `weeks`); `--full`
    # replays 10 beside elec2's 30
    side_weeks: int | None = None
    # the release path (demo/release.py): notifications of both models to a local webhook receiver, and
    # `promotion.mode: shadow` for one model, decided after `shadow_batches` labelled batches
    notify: bool = True
    notify_on: tuple[NotifyOn, ...] = (
        "promoted",
        "rejected",
        "rolled_back",
        "retrain_failed",
        "shadow_decided",
    )
    notify_wait: float = 15.0  # seconds to wait at the end for notifications still on their way
    shadow_model: str | None = "elec2"
    shadow_batches: int = 1


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
    # the side model's replay: {"model", "weeks", "versions", "warmup"} (empty without one)
    side: dict[str, Any] = field(default_factory=dict)
    # delivered notifications (demo/release.py message_row) and shadow decisions of every replayed model
    notifications: list[dict[str, Any]] = field(default_factory=list)
    shadow_decisions: list[dict[str, Any]] = field(default_factory=list)
    release: dict[str, Any] = field(default_factory=dict)  # receiver URL, block, automations, counts
    # every flow run's phases (queued, process start-up, run) and their summary per kind (demo/timing.py)
    timing: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
