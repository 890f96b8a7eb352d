"""`evergreen request-labels`: active learning, the rows of an unlabelled batch worth labelling (issue 12)."""

from __future__ import annotations

import typer

from cli.output import print_json, run_guarded


def register(app: typer.Typer) -> None:
    app.command("request-labels")(request_labels)


def request_labels(
    model: str = typer.Argument(..., help="Model name: models/<model>.yaml (with data.delayed_labels)."),
    file: str = typer.Argument(..., help="Unlabelled batch (.csv or .parquet) with the id column."),
    budget: float = typer.Option(
        None,
        "--budget",
        help="Share of the unlabelled rows (<= 1) or a row count. Default: data.delayed_labels.request.share; "
        "the spec's rows_per_period caps it either way.",
    ),
    strategy: str = typer.Option(
        None,
        "--strategy",
        help="margin, entropy or random (the control). Default: the spec's request.strategy.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the random control."),
    out: str = typer.Option(None, "--out", help="Queue folder. Default: EVERGREEN_HOME/label-queue/<model>."),
    json_out: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Export a label queue (CSV + Prefect artifact) and emit evergreen.labels.requested.

    Return the filled queue with `evergreen ingest-labels MODEL FILE`. Exit 0, or 1 with one `error:` line.
    """
    from flows.active import request_labels as flow

    result = run_guarded(
        lambda: flow(model=model, path=file, budget=budget, strategy=strategy, seed=seed, out_dir=out),
        as_json=json_out,
    )
    if json_out:
        print_json(result)
        return
    typer.echo(
        f"{result['requested']} of {result['unlabelled_rows']} unlabelled rows queued for labelling "
        f"({result['strategy']}, budget {result['budget']}; {result['requested_in_period']} requested this "
        f"{result['period']} period): {result['queue']}"
    )
