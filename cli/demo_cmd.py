"""`evergreen demo`: replay Elec2 through the scheduler on a local stack; print a summary, write a report."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

# (weeks, start week, side-model weeks, schedule every): the default replay (docs/demo.md "Measured
# duration") and --full
SHORT = (3, 48, 3, 0)
FULL = (30, 44, 10, 4)


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        weeks: int | None = typer.Option(
            None,
            "--weeks",
            min=1,
            help=f"Replay weeks (simulated time; {SHORT[0]}, or {FULL[0]} with --full).",
        ),
        start_week: int | None = typer.Option(
            None,
            "--start-week",
            min=1,
            help=f"First replay week (0 = 1996-05-07; {SHORT[1]}, or {FULL[1]} with --full).",
        ),
        full: bool = typer.Option(
            False,
            "--full",
            help=f"The full replay: {FULL[0]} weeks from week {FULL[1]}, the side model beside the first "
            f"{FULL[2]} (about half an hour on 2 cores).",
        ),
        warmup_weeks: int = typer.Option(
            8, "--warmup-weeks", min=1, help="Weeks ingested before the replay."
        ),
        schedule_every: int | None = typer.Option(
            None,
            "--schedule-every",
            min=0,
            help=f"Explicit reason=schedule retrain every N weeks (0: never; {SHORT[3]}, or {FULL[3]} with --full).",
        ),
        keep: bool = typer.Option(False, "--keep", help="Leave the stack and its UIs running at the end."),
        side_model: str = typer.Option(
            "bike_sharing",
            "--side-model",
            help="A second shipped model replayed side by side ('none': elec2 only).",
        ),
        side_start_week: int = typer.Option(
            20, "--side-start-week", min=1, help="First replay week of the side model (0 = its first row)."
        ),
        side_weeks: int | None = typer.Option(
            None,
            "--side-weeks",
            min=1,
            help=f"Replay weeks of the side model, beside elec2's first ones (as many; {FULL[2]} with --full).",
        ),
        shadow_model: str = typer.Option(
            "elec2",
            "--shadow-model",
            help="Replayed model whose gate-passed challengers go to shadow first ('none': direct promotion).",
        ),
        notify: bool = typer.Option(
            True, "--notify/--no-notify", help="Send notifications to a local webhook receiver."
        ),
        as_json: bool = typer.Option(
            False, "--json", help="Print the result as JSON (progress goes to stderr)."
        ),
    ) -> None:
        """Replay Elec2 (and bike sharing beside it) week by week: ingest -> monitor -> automation-triggered
        retrains -> report."""
        from rich.console import Console

        from demo import DemoError, DemoOptions, run_demo
        from stack import StackError

        err = Console(stderr=True, log_path=False)
        out = Console(log_path=False)
        preset = FULL if full else SHORT
        weeks = weeks or preset[0]
        side_weeks = side_weeks or preset[2]
        opts = DemoOptions(
            weeks=weeks,
            start_week=start_week or preset[1],
            warmup_weeks=warmup_weeks,
            schedule_every=preset[3] if schedule_every is None else schedule_every,
            keep=keep,
            side_model=None if side_model.lower() in ("", "none") else side_model,
            side_start_week=side_start_week,
            side_weeks=min(side_weeks, weeks),
            shadow_model=None if shadow_model.lower() in ("", "none") else shadow_model,
            notify=notify,
        )
        live_console = err if as_json else out
        try:
            with _LiveTable(live_console, weeks) as live:
                result = run_demo(opts, log=live.log, on_week=live.add)
        except (DemoError, StackError, OSError) as exc:
            err.print(f"[red]demo failed:[/red] {exc}")
            raise typer.Exit(1) from exc
        if as_json:
            typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
            return
        out.print(_summary(result.weeks))
        if result.side:
            out.print(_summary(result.side["weeks"], result.side["model"]))
        _print_footer(out, result)


class _LiveTable:
    """A rich Live table: one row per replayed week; log lines print above it."""

    def __init__(self, console: Any, total: int) -> None:
        self.console = console
        self.total = total
        self.rows: list[dict[str, Any]] = []
        self.live: Any = None

    def __enter__(self) -> _LiveTable:
        from rich.live import Live

        self.live = Live(self._render(), console=self.console, refresh_per_second=2, transient=True)
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(*exc)

    def log(self, msg: str) -> None:
        self.console.log(msg)
        if not self.console.is_terminal:
            sys.stderr.flush()

    def add(self, row: dict[str, Any]) -> None:
        """Add a row, or replace the row of the same model and step (a warm-up row once it is done)."""
        key = (row.get("model"), row.get("phase"), row.get("index"))
        self.rows = [r for r in self.rows if (r.get("model"), r.get("phase"), r.get("index")) != key]
        self.rows.append(row)
        self.live.update(self._render())
        if not self.console.is_terminal:  # no live redraw in a pipe or CI log: one line per week
            self.console.print(_week_line(row, self.total), soft_wrap=True)

    def _render(self) -> Any:
        from rich.table import Table

        t = Table(title=f"Evergreen demo: {len(self.rows)} rows, {self.total} weeks", expand=False)
        for col in ("#", "model", "week", "start", "drift", "decision", "champion", "score", "secs"):
            t.add_column(col)
        for r in self.rows[-15:]:
            t.add_row(
                "w" if r.get("phase") == "warm-up" else str(r["index"]),
                str(r.get("model", "")),
                str(r["week"]),
                r["start"],
                _f(r.get("drift_score")),
                _decision(r),
                f"v{r.get('champion_version')}" if r.get("champion_version") else "-",
                _score(r),
                f"{r.get('seconds', 0):.0f}",
            )
        return t


def _f(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}"


def _score(r: dict[str, Any]) -> str:
    """Accuracy for a classifier, else the spec's metric with its name (e.g. rmse 52.164)."""
    if r.get("metric_name"):
        return f"{r['metric_name']} {_f(r.get('metric'))}"
    return _f(r.get("accuracy"))


def _decision(r: dict[str, Any]) -> str:
    parts = [
        f"{x.get('reason')}: v{x.get('version')} {x.get('status')}"
        if x.get("version")
        else f"{x.get('reason')}: {x.get('status')}"
        for x in r.get("retrains") or []
    ]
    if not parts and r.get("drift_detected"):
        parts = ["drift (no new run)"]
    parts += [f"shadow v{d.get('version')} {d.get('decision')}" for d in r.get("shadow") or []]
    if r.get("notifications"):
        parts.append(f"{len(r['notifications'])} notified")
    if r.get("status"):
        parts.append(str(r["status"]))
    return "; ".join(parts) or "-"


def _week_line(r: dict[str, Any], total: int) -> str:
    if r.get("phase") == "warm-up":
        champion = f"champion v{r['champion_version']}" if r.get("champion_version") else "no champion yet"
        return (
            f"{r.get('model', '')} warm-up (weeks {r['week']}, {r['rows']} rows from {r['start']}): "
            f"{_decision(r)}, {champion}, {r.get('seconds', 0):.0f}s"
        )
    return (
        f"{r.get('model', '')} week {r['index']}/{total} (#{r['week']}, {r['start']}): "
        f"drift {_f(r.get('drift_score'))}, "
        f"{_decision(r)}, champion v{r.get('champion_version')}, score {_score(r)}, "
        f"{r.get('seconds', 0):.0f}s"
    )


def _summary(weeks: list[dict[str, Any]], model: str = "elec2") -> Any:
    from rich.table import Table

    from evergreen.report import SUMMARY_HEADERS, summary_rows

    t = Table(title=f"Evergreen demo summary: {model}")
    for h in SUMMARY_HEADERS:
        t.add_column(h)
    for row in summary_rows(weeks):
        t.add_row(*[_f(c) if isinstance(c, float) else ("-" if c is None else str(c)) for c in row])
    return t


def _print_footer(out: Any, result: Any) -> None:
    side_weeks = (result.side or {}).get("weeks") or []
    n_auto = sum(
        1
        for w in [*result.weeks, *side_weeks]
        for r in w.get("retrains") or []
        if r.get("reason") in ("drift", "performance", "volume") and r.get("status") != "skipped"
    )
    out.print(
        f"{len(result.versions) + len((result.side or {}).get('versions') or [])} versions registered; "
        f"{n_auto} automation-started retrains; "
        f"total {result.seconds.get('total')}s (stack up {result.seconds.get('stack_up')}s)"
    )
    secs = result.seconds
    out.print(
        f"first live row after {secs.get('first_row')}s, first replay-week row after "
        f"{secs.get('first_week_row')}s"
    )
    from demo.timing import summary_lines

    for line in summary_lines((result.timing or {}).get("summary") or {}):
        out.print(f"flow runs, {line}")
    if result.release:
        rel = result.release
        out.print(
            f"{len(result.shadow_decisions)} shadow decisions; {rel.get('delivered', 0)} notifications "
            f"delivered to {rel.get('url')} (of {rel.get('expected', 0)} notified events; {rel.get('jsonl')})"
        )
    out.print(f"Report: {result.report}")
    if result.kept:
        out.print(
            f"Stack left running (--keep). Prefect UI: {result.urls.get('prefect_ui')}  "
            f"MLflow UI: {result.urls.get('mlflow_ui')}"
        )
        out.print(f"Stop it with: EVERGREEN_HOME={result.demo_home} evergreen down")
