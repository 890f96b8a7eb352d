"""Entry point for `evergreen`. Each sub-command lives in its own module and registers itself here."""

from __future__ import annotations

import os
import sys

import typer

app = typer.Typer(
    name="evergreen",
    help="Automated, gated retraining for tabular models on Prefect, MLflow, DVC and GX.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _global_options(
    debug: bool = typer.Option(
        False, "--debug", help="Show tracebacks (Evergreen's and Prefect's) instead of one `error:` line."
    ),
) -> None:
    """Automated, gated retraining for tabular models on Prefect, MLflow, DVC and GX."""
    from cli.output import set_debug

    set_debug(debug)
    _bound_mlflow_calls()


def _bound_mlflow_calls() -> None:
    """MLflow retries an unreachable server for minutes by default: bound it from EVERGREEN_MLFLOW_*
    settings (explicit MLFLOW_HTTP_REQUEST_* variables still win)."""
    from evergreen.settings import get_settings, mlflow_http_env

    try:
        env = mlflow_http_env(get_settings())
    except Exception:  # noqa: BLE001  a bad setting is reported by the command that reads it
        return
    for key, value in env.items():
        os.environ.setdefault(key, value)


def _register() -> None:
    # Imported here, not at module top, so `evergreen --help` stays fast and a broken
    # sub-command module names itself instead of breaking every command.
    from cli import commands

    commands.register(app)


def hoist_global_flags(argv: list[str]) -> list[str]:
    """`evergreen retrain elec2 --debug` means the same as `evergreen --debug retrain elec2`.

    Click only accepts group options before the sub-command; users add `--debug` at the end when a
    command has just failed, so move it (never past a `--` separator) to where Click looks for it.
    """
    head, sep, tail = (argv, [], []) if "--" not in argv else _split(argv)
    if "--debug" not in head[1:]:
        return argv
    rest = [a for a in head[1:] if a != "--debug"]
    return [head[0], "--debug", *rest, *sep, *tail]


def _split(argv: list[str]) -> tuple[list[str], list[str], list[str]]:
    i = argv.index("--")
    return argv[:i], ["--"], argv[i + 1 :]


def main() -> None:
    _register()
    sys.argv = hoist_global_flags(sys.argv)
    try:
        app()
    except Exception as exc:
        # Last line of defence for failures outside run_guarded: one `error:` line, no traceback.
        from cli.errors import describe
        from cli.output import STATE, fail

        if STATE.debug or "--debug" in sys.argv:
            raise
        try:
            fail(describe(exc), as_json="--json" in sys.argv)
        except typer.Exit as done:
            sys.exit(done.exit_code)


if __name__ == "__main__":
    main()
