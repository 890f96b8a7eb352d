"""`evergreen history`: read a model's audit log back (docs/audit.md)."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

import typer

from cli.output import fail, print_json

# A history read should fail in seconds, not after MLflow's default ~4 minutes of retries.
# setdefault: an operator's own MLFLOW_HTTP_REQUEST_* settings still win.
_MLFLOW_BOUNDS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}


def register(app: typer.Typer) -> None:
    app.command("history")(history)


def history(
    model: str = typer.Argument(..., help="Model name."),
    json_out: bool = typer.Option(False, "--json", help="Print the entries as a JSON list."),
    limit: int = typer.Option(None, "--limit", min=1, help="Only the most recent N entries."),
    action: str = typer.Option(
        None, "--action", help="Only this action (ingest, reject-batch, promote, reject-model, skip, ...)."
    ),
) -> None:
    """Print the model's audit log, oldest first: every decision with its time, actor, versions and reason.

    Exit 0 (also when there are no entries); 1 when the log cannot be read.
    """
    from adapters.audit_log import AuditLogError, read
    from evergreen.audit import check_model_name, parse_action
    from evergreen.settings import get_settings

    try:
        check_model_name(model)
        act = parse_action(action) if action else None
    except ValueError as exc:
        fail(str(exc), as_json=json_out)
        return
    for key, value in _MLFLOW_BOUNDS.items():
        os.environ.setdefault(key, value)
    settings = get_settings()
    try:
        # Whatever MLflow prints goes to stderr: stdout stays pure JSON.
        with contextlib.redirect_stdout(sys.stderr):
            entries = read(settings, model, action=act, limit=limit)
    except AuditLogError as exc:
        from cli.errors import refused

        fail(refused(exc) or str(exc), as_json=json_out)  # a 401/403 names the credentials to check
        return
    if json_out:
        print_json([e.record() for e in entries])
        return
    if not entries:
        what = f" {act.value}" if act else ""
        typer.echo(
            f"{model}: no{what} audit entries (experiment {settings.audit_experiment!r} "
            f"on {settings.tracking_uri})"
        )
        return
    typer.echo(_table([e.record() for e in entries]))


def _versions(versions: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in versions.items() if v not in (None, "")) or "-"


def _table(records: list[dict[str, Any]]) -> str:
    rows = [
        [
            r["time"][:19].replace("T", " "),
            r["action"],
            r["actor"],
            _versions(r["versions"]),
            (r["reason"] or "-").replace("\n", " ")[:80],
        ]
        for r in records
    ]
    header = ["TIME (UTC)", "ACTION", "ACTOR", "VERSIONS", "REASON"]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)
