"""Shared CLI plumbing: JSON output and turning known errors into one clear line and an exit code."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

T = TypeVar("T")

EXIT_ERROR = 1
EXIT_REJECTED = 2


def print_json(data: Any) -> None:
    """Machine-readable output on stdout (logs go to stderr)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def fail(
    message: str, code: int = EXIT_ERROR, *, as_json: bool = False, extra: dict[str, Any] | None = None
) -> None:
    if as_json:
        print_json({"status": "error", "error": message, **(extra or {})})
    typer.secho(f"error: {message}", err=True, fg="red")
    raise typer.Exit(code)


def run_guarded(fn: Callable[[], T], *, as_json: bool) -> T:
    """Run a flow call; known user-facing errors become a clear message and exit code 1."""
    from adapters.batch_files import BatchError
    from adapters.dvc_registry import RegistryError
    from evergreen.spec import SpecError
    from tasks.data import ValidationFailed

    try:
        return fn()
    except (SpecError, BatchError, RegistryError, ValidationFailed, ValueError, FileNotFoundError) as exc:
        fail(str(exc), as_json=as_json)
        raise  # unreachable; fail() exits
