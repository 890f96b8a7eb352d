"""`evergreen rollback`: move the champion alias back, with an audit entry."""

from __future__ import annotations

import typer

from cli.output import print_json, run_guarded


def register(app: typer.Typer) -> None:
    app.command("rollback")(rollback)


def rollback(
    model: str = typer.Argument(..., help="Model name."),
    to: str = typer.Option(
        None, "--to", help="Version to make champion (default: the one the champion replaced)."
    ),
    reason: str = typer.Option(
        "manual rollback", "--reason", help="Recorded on the versions and in the event."
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Allow a target that never passed a gate (recorded as forced in the audit log).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Point `champion` at an earlier version; tags both versions and emits evergreen.model.rolled-back."""
    from flows.rollback import rollback as rollback_flow

    # RollbackError is a ValueError: run_guarded turns it into one clear line and exit code 1.
    result = run_guarded(
        lambda: rollback_flow(model=model, to_version=to, reason=reason, force=force), as_json=json_out
    )
    if json_out:
        print_json(result)
    else:
        typer.echo(
            f"{model}: champion v{result['from_version']} -> v{result['to_version']} ({result['reason']})"
            + (" [forced]" if result.get("forced") else "")
        )
