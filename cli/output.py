"""Shared CLI plumbing: JSON output and turning errors into one clear `error:` line and an exit code.

Conventions (docs/cli.md): exit 0 success, 1 error, 2 batch rejected. A failure prints exactly one
line starting with `error:` on stderr (and, with --json, `{"status": "error", "error": ...}` on
stdout); no traceback unless the global --debug flag is given.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import typer

from cli.errors import describe

T = TypeVar("T")

EXIT_ERROR = 1
EXIT_REJECTED = 2


class _State:
    debug = False


STATE = _State()


def set_debug(debug: bool) -> None:
    STATE.debug = debug


def print_json(data: Any) -> None:
    """Machine-readable output on stdout (logs go to stderr)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def one_line(message: str) -> str:
    """A multi-line message (e.g. a spec error listing keys) as one line: `head: item; item`."""
    lines = [ln.strip() for ln in str(message).splitlines() if ln.strip()]
    if not lines:
        return "unknown error"
    head, rest = lines[0], lines[1:]
    return f"{head} {'; '.join(rest)}" if rest else head


def fail(
    message: str, code: int = EXIT_ERROR, *, as_json: bool = False, extra: dict[str, Any] | None = None
) -> None:
    text = one_line(message)
    if as_json:
        print_json({"status": "error", "error": text, **(extra or {})})
    typer.secho(f"error: {text}", err=True, fg="red")
    raise typer.Exit(code)


class _NoTracebacks(logging.Filter):
    """Drop records carrying a traceback on console handlers: the error line says what failed.
    The records still reach Prefect's API handler, so the UI keeps the full traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if STATE.debug:
            return True
        if record.exc_info or record.exc_text:
            return False
        msg = record.getMessage() if record.levelno >= logging.ERROR else ""
        return not msg.startswith(("Finished in state Failed", "Finished in state Crashed"))


_FILTER = _NoTracebacks()


def quiet_console_tracebacks() -> None:
    """Install the filter on every console (stream) handler Prefect configured (root and prefect.*).

    Prefect 3 configures logging on import (logging.yml: `console` on the root logger, uvicorn and
    fastapi); flow/task run loggers propagate to root. Called again before each command, so a
    re-configuration by Prefect is covered too."""
    import prefect  # noqa: F401  configures logging

    loggers = [logging.getLogger()] + [
        logging.getLogger(name)
        for name in list(logging.root.manager.loggerDict)
        if name.startswith("prefect")
    ]
    for lg in loggers:
        for handler in lg.handlers:
            if isinstance(handler, logging.StreamHandler) and _FILTER not in handler.filters:
                handler.addFilter(_FILTER)


@contextlib.contextmanager
def json_stdout(as_json: bool) -> Iterator[None]:
    """In --json mode, anything a library prints to stdout (MLflow's "View run ..." lines) goes to
    stderr, so stdout carries only the JSON document printed after the command."""
    if not as_json:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


# Exceptions the calling command turns into its own exit code (ingest: 2 rejected, pending...).
PASSTHROUGH = frozenset({"flows.ingest.BatchRejected", "flows.ingest.IngestIncomplete"})


def _passes_through(exc: BaseException, extra: tuple[type[BaseException], ...]) -> bool:
    name = f"{type(exc).__module__}.{type(exc).__qualname__}"
    return isinstance(exc, (typer.Exit, *extra)) or name in PASSTHROUGH


def run_guarded(
    fn: Callable[[], T], *, as_json: bool, passthrough: tuple[type[BaseException], ...] = ()
) -> T:
    """Run a flow call; any failure becomes one `error:` line and exit 1 (a traceback with --debug).

    `passthrough` exceptions (and PASSTHROUGH) are re-raised for the caller to map to its exit code."""
    quiet_console_tracebacks()
    try:
        with json_stdout(as_json):
            return fn()
    except Exception as exc:
        if _passes_through(exc, passthrough):
            raise
        if STATE.debug:
            raise
        fail(describe(exc), as_json=as_json)
        raise  # unreachable; fail() exits


def preflight_spec(model: str, overrides: dict[str, Any] | None, *, as_json: bool) -> None:
    """Check the spec (and `--set` overrides) before a flow starts: a typo in a model name should not
    cost a temporary Prefect server's start-up before its one `error:` line."""
    from evergreen.settings import get_settings
    from evergreen.spec import SpecError, load_spec

    try:
        spec = load_spec(model, get_settings().models_dir)
        if overrides:
            spec.with_overrides(overrides)
    except SpecError as exc:
        if STATE.debug:
            raise
        fail(str(exc), as_json=as_json)


@contextlib.contextmanager
def policy_progress(width: int = 24) -> Iterator[Callable[[str, int, int], None]]:
    """Progress bars on stderr, one per backtest policy; yields the `on_batch(policy, done, total)` hook."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn(f"{{task.description:<{width}}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    ) as progress:
        bars: dict[str, Any] = {}

        def on_batch(policy: str, done: int, total: int) -> None:
            if policy not in bars:
                bars[policy] = progress.add_task(policy, total=total)
            progress.update(bars[policy], completed=done)

        yield on_batch
