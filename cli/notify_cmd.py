"""`evergreen notify setup|apply`: the notification block and the automations rendered from the specs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

MODELS_DIR_HELP = "Folder of <model>.yaml specs. Default: EVERGREEN_MODELS_DIR (models)."


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Notifications: a webhook block, and one Prefect automation per model and event the spec names.",
        no_args_is_help=True,
    )
    app.add_typer(group, name="notify")

    @group.command()
    def apply(
        models_dir: Path | None = typer.Option(None, "--models-dir", help=MODELS_DIR_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
    ) -> None:
        """Create or update the notification automations of every spec with `notifications.block`."""
        _report(_apply(models_dir, as_json), as_json)

    @group.command()
    def setup(
        url: str = typer.Option(
            ..., "--url", help="Where the webhook POSTs its JSON (subject, body, block)."
        ),
        name: str = typer.Option("evergreen", "--name", help="Block name; specs refer to it by this name."),
        models_dir: Path | None = typer.Option(None, "--models-dir", help=MODELS_DIR_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
    ) -> None:
        """Create (or overwrite) a custom-webhook notification block, then apply the automations."""
        from adapters.prefect_notify import save_webhook_block
        from cli.output import run_guarded

        ref = run_guarded(lambda: save_webhook_block(url, name), as_json=as_json)
        if not as_json:
            typer.echo(f"block {ref} posts to {url}; use it with `notifications: {{block: {name}}}`")
        _report({"block": ref, "url": url, **_apply(models_dir, as_json)}, as_json)


def _apply(models_dir: Path | None, as_json: bool) -> dict[str, Any]:
    from adapters.prefect_notify import apply_notifications
    from cli.output import fail, run_guarded
    from deployments import load_specs
    from evergreen.settings import get_settings
    from evergreen.spec import SpecError

    src = models_dir or get_settings().models_dir
    try:
        specs = load_specs(src)
    except SpecError as exc:
        fail(str(exc), as_json=as_json)
        raise  # unreachable; fail() exits
    out = run_guarded(lambda: apply_notifications(specs), as_json=as_json)
    notified = [s.name for s in specs if s.notifications.block]
    return {"models_dir": str(src), "models": notified, **out}


def _report(info: dict[str, Any], as_json: bool) -> None:
    from cli.output import print_json

    if as_json:
        print_json({"status": "ok", **info})
        return
    for what in ("created", "updated", "deleted"):
        for name in info.get(what) or []:
            typer.echo(f"{name}: {what}")
    if not info.get("models"):
        typer.echo(f"no spec in {info['models_dir']} sets notifications.block: no notification automations")
