"""`evergreen seed`, `evergreen ingest` and `evergreen ingest-labels`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from cli.output import EXIT_REJECTED, fail, print_json, run_guarded


def register(app: typer.Typer) -> None:
    app.command("seed")(seed)
    app.command("ingest")(ingest)
    app.command("ingest-labels")(ingest_labels)


def seed(
    out: Path = typer.Option(Path("data"), help="The DVC-tracked data folder of the code checkout."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Build data/ from seeds/ (Elec2 and bike sharing, with derived timestamps) and push it to the local DVC remote."""
    from adapters.dvc_seed import build_seed

    result = build_seed(out)
    if json_out:
        print_json(result)
    else:
        typer.echo(
            f"seed data in {out}/ ("
            + ", ".join(f"{m}: {d['rows']} rows" for m, d in result["datasets"].items())
            + f"); data.dvc md5 {result['md5']} "
            f"({'matches' if result['matches_data_dvc'] else 'NEW: commit data.dvc'})"
        )


def ingest(
    model: str = typer.Argument(..., help="Model name: models/<model>.yaml."),
    file: Path = typer.Argument(..., help="Batch file: .csv or .parquet."),
    json_out: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Validate FILE with GX against the model's spec; append it as a new DVC version or quarantine it.

    Exit codes: 0 ingested (or duplicate), 2 rejected and quarantined, 1 any other error (including a
    committed batch whose announcement is pending: re-run the same ingest to complete it).
    """
    from flows.ingest import ingest as ingest_flow

    result = _run_ingest(lambda: ingest_flow(model=model, path=str(file)), json_out)
    if result is None:
        return
    if result["status"] == "duplicate":
        typer.echo(f"{file}: these rows were already ingested; nothing new (no event emitted)")
        return
    for reason in (result.get("checks") or {}).get("reasons", []):
        typer.echo(f"note: {reason}")
    share = result["new_share"]
    typer.echo(
        f"{result['rows']} rows ingested into {model} ({result['total_rows']} in total"
        f"{', dataset created' if result['dataset_created'] else ''}); "
        f"new since champion: {result['new_rows_since_champion']} rows "
        f"({'no champion yet' if share is None else format(share, '.0%')})"
    )


def ingest_labels(
    model: str = typer.Argument(..., help="Model name: models/<model>.yaml (with data.delayed_labels)."),
    file: Path = typer.Argument(..., help="Labels file (.csv or .parquet): the id column and the target."),
    json_out: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Add labels for rows ingested earlier without them, as a new data version of the model's dataset.

    Exit codes: 0 ingested (or duplicate: every label was ingested before), 2 rejected and quarantined
    (unknown ids, conflicting labels, missing values), 1 any other error.
    """
    from flows.labels import ingest_labels as labels_flow

    result = _run_ingest(lambda: labels_flow(model=model, path=str(file)), json_out)
    if result is None:
        return
    if result["status"] == "duplicate":
        typer.echo(f"{file}: these labels were already ingested; nothing new (no event emitted)")
        return
    typer.echo(
        f"{result['labels']} labels ingested into {model} ({result['labelled_rows']} rows labelled, "
        f"{result['unlabelled_rows']} still waiting for labels)"
    )


def _run_ingest(call: Callable[[], dict[str, Any]], json_out: bool) -> dict[str, Any] | None:
    """Run an ingest-like flow: rejected -> exit 2, pending -> exit 1, --json -> the document (None
    returned: nothing left to print); otherwise the outcome, after its `data_version` line."""
    from flows.ingest import BatchRejected, IngestIncomplete

    try:
        result = run_guarded(call, as_json=json_out)
    except BatchRejected as exc:
        fail(str(exc), EXIT_REJECTED, as_json=json_out, extra={"outcome": "rejected"})
        return None
    except IngestIncomplete as exc:
        fail(str(exc), as_json=json_out, extra={"outcome": "pending"})
        return None
    if json_out:
        print_json(result)
        return None
    typer.echo(f"data_version {result['data_version']}")
    return result
