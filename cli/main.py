"""Entry point for `evergreen`. Each sub-command lives in its own module and registers itself here."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="evergreen",
    help="Automated, gated retraining for tabular models on Prefect, MLflow, DVC and GX.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Imported here, not at module top, so `evergreen --help` stays fast and a broken
    # sub-command module names itself instead of breaking every command.
    from cli import commands

    commands.register(app)


def main() -> None:
    _register()
    app()


if __name__ == "__main__":
    main()
