"""`evergreen retrain`: the retrain flow, in-process."""

from __future__ import annotations

import json
from typing import Any, cast, get_args

import typer

from cli.output import fail, preflight_spec, print_json, run_guarded


def register(app: typer.Typer) -> None:
    app.command("retrain")(retrain)


def retrain(
    model: str = typer.Argument(..., help="Model name: models/<model>.yaml."),
    rev: str = typer.Option(None, "--rev", help="Data registry git rev to train on (default: HEAD)."),
    reason: str = typer.Option(
        "manual", "--reason", help="manual|schedule|drift|performance|volume|backfill"
    ),
    force: bool = typer.Option(False, "--force", help="Train even inside the cooldown."),
    override: list[str] = typer.Option(
        [], "--set", help="Spec override KEY=JSON, e.g. --set training.window.kind='\"all\"'. Repeatable."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Train, gate and register a new version. Exit 0 whether promoted, rejected or skipped; 1 on error."""
    from flows.retrain_outcome import Reason  # no Prefect import: bad input fails fast

    allowed = get_args(Reason)
    if reason not in allowed:
        fail(f"--reason {reason!r} is not one of {', '.join(allowed)}", as_json=json_out)

    overrides: dict[str, Any] = {}
    for item in override:
        key, _, raw = item.partition("=")
        try:
            overrides[key] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key] = raw
    preflight_spec(model, overrides, as_json=json_out)
    from flows.retrain import retrain as retrain_flow

    result = run_guarded(
        lambda: retrain_flow(
            model=model,
            reason=cast(Reason, reason),
            data_rev=rev,
            force=force,
            overrides=overrides or None,
        ),
        as_json=json_out,
    )
    if json_out:
        print_json(result)
        return
    if result["status"] == "skipped":
        typer.echo(f"{model}: skipped ({result['detail']})")
        return
    typer.echo(f"{model} v{result['version']}: {result['status'].upper()} - {result['detail']}")
    typer.echo(f"champion: v{result['champion_version']}   data_version: {result['data_version']}")
