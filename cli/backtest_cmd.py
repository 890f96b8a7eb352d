"""`evergreen backtest`: replay a model's history under retrain policies (the backtest flow, in-process)."""

from __future__ import annotations

from typing import Any, cast

import typer

from cli.output import policy_progress, print_json, run_guarded


def register(app: typer.Typer) -> None:
    app.command("backtest")(backtest)


def backtest(
    model: str = typer.Argument(..., help="Model name: models/<model>.yaml."),
    policies: str = typer.Option(..., "--policies", help="Policies YAML, e.g. policies/elec2.yaml."),
    json_out: bool = typer.Option(False, "--json", help="Print the full report as JSON (no progress bar)."),
    batch_period: str = typer.Option(None, "--batch-period", help="Batch length, e.g. 7D (the default)."),
    batch_rows: int = typer.Option(None, "--batch-rows", help="Rows per batch instead of a period."),
    warmup: int = typer.Option(4, "--warmup", help="Training-only batches before scoring starts."),
    data: str = typer.Option(
        None, "--data", help="History file (csv/parquet). Default: the model's seed data."
    ),
    drift: list[str] = typer.Option(
        [],
        "--drift",
        help="A known drift point (timestamp or batch number), for detection delay. Repeatable.",
    ),
    rank_by: str = typer.Option(None, "--rank-by", help="accuracy, or the spec's metric (default)."),
    out: str = typer.Option(None, "--out", help="Output folder. Default: EVERGREEN_HOME/reports/backtest."),
) -> None:
    """Replay history as batches: score each with the champion, let each policy decide, gate, repeat.

    Prints a ranked table (mean accuracy and metric, retrains, promotions, train seconds) and writes a
    CSV, JSON and HTML/PNG plots. Exit 0 on success, 1 on a bad spec, policies file or data.
    """
    from flows.backtest import backtest as backtest_flow
    from flows.backtest import progress_hook

    if batch_period and batch_rows:
        from cli.output import fail

        fail("give --batch-period or --batch-rows, not both", as_json=json_out)

    def call() -> dict[str, Any]:
        return backtest_flow(
            model=model,
            policies_file=policies,
            data=data,
            batch_period=batch_period,
            batch_rows=batch_rows,
            warmup=warmup,
            drifts=list(drift) or None,
            rank_by=cast(Any, rank_by),  # the flow validates it
            out_dir=out,
        )

    if json_out:
        result = run_guarded(call, as_json=True)
        print_json({**result, "label_delay_costs": _delay_costs(result)})
        return

    with policy_progress() as on_batch, progress_hook(on_batch):
        result = run_guarded(call, as_json=False)
    _print_table(result)


def _print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from evergreen.backtest.estimates import text_lines as estimate_lines
    from evergreen.backtest.tables import diff_cell

    metric = result["metric"]
    table = Table(
        title=f"Policy backtest: {result['model']} ({result['scored_batches']} {result['batching']}, "
        f"warm-up {result['warmup']}; ranked by {result['rank_by']})"
    )
    for col in (
        "#",
        "policy",
        "window",
        "gate",
        "accuracy",
        metric,
        "vs every batch (95% CI)",
        "retrains",
        "promoted",
        "updates",
        "CPU s",
        "CPU vs every batch",
        "wall s",
        "delay",
        "Pareto",
    ):
        left = col in ("policy", "window", "gate")
        table.add_column(col, justify="left" if left else "right", no_wrap=col in ("policy", "window"))

    def f(v: Any, spec: str = ".4f") -> str:
        return "-" if v is None else format(v, spec)

    for r in result["table"]:
        table.add_row(
            str(r["rank"]),
            r["policy"] + (" (baseline)" if r.get("baseline") else ""),
            r["window"],
            r["gate"],
            f(r["mean_accuracy"]),
            f(r[f"mean_{metric}"]),
            diff_cell(r),
            str(r["retrains"]),
            str(r["promotions"]),
            str(r.get("updates", 0)),
            f(r["cpu_seconds"], ".1f"),
            "-" if r.get("cpu_vs_every_batch") is None else f"{100 * r['cpu_vs_every_batch']:.0f}%",
            f(r["wall_seconds"], ".1f"),
            f(r["detection_delay"], ".1f"),
            "*" if r["pareto"] else "",
        )
    console = Console()
    if not console.is_terminal:  # piped or captured: do not squeeze the table into 80 columns
        console = Console(width=160)
    console.print(table)
    for r in result["table"]:
        console.print(f"  {r['policy']}: {r['trigger']}", highlight=False)
    console.print(f"best: [bold]{result['best']}[/bold]   Pareto front: {', '.join(result['pareto_front'])}")
    for cost in _delay_costs(result):  # policies with label_delay: D beside their D = 0 twin
        console.print(
            f"label delay {cost['label_delay']}: {cost['policy']} accuracy {f(cost['mean_accuracy'])} vs "
            f"{cost['baseline']} {f(cost['baseline_accuracy'])} with labels at once: the delay costs "
            f"{f(cost['accuracy_cost'], '+.4f')} accuracy",
            highlight=False,
        )
    for line in estimate_lines(result.get("policies", [])):  # policies with trigger.estimated
        console.print(line, highlight=False)
    for kind, path in result.get("files", {}).items():
        console.print(f"{kind}: {path}", highlight=False)


def _delay_costs(result: dict[str, Any]) -> list[dict[str, Any]]:
    from evergreen.backtest.labels import delay_costs

    return [c.as_dict() for c in delay_costs(result.get("policies", []))]
