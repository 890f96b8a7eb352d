"""`evergreen serve`: the champion behind MLflow's scoring server, following promotions and rollbacks."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import typer

from cli.output import fail


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    model: str = typer.Argument(..., help="Registered model name (models/<model>.yaml)."),
    alias: str = typer.Option("champion", "--alias", help="The alias to serve (champion, challenger...)."),
    port: int = typer.Option(5001, "--port", help="Port on 127.0.0.1 for /invocations and /ping."),
    follow: bool = typer.Option(
        True, "--follow/--no-follow", help="Restart on the new version when the alias moves (default on)."
    ),
    poll: float = typer.Option(30.0, "--poll", min=0.5, help="Seconds between alias checks with --follow."),
    workers: int = typer.Option(1, "--workers", min=1, help="Scoring server worker processes."),
    json_out: bool = typer.Option(False, "--json", help="One JSON line per (re)start on stdout."),
) -> None:
    """Serve `models:/MODEL@ALIAS` with `mlflow models serve` until Ctrl-C (docs/serving.md)."""
    from adapters import mlflow_registry as registry
    from evergreen.settings import get_settings
    from stack.model_server import ModelFollower
    from stack.net import HOST, port_in_use

    settings = get_settings()
    if port_in_use(port):
        fail(f"port {port} on {HOST} is in use: pick another with --port")
    cl = registry.client(settings)

    def resolve() -> str | None:
        return registry.alias_version(cl, model, alias)

    env = {**os.environ, "MLFLOW_TRACKING_URI": settings.tracking_uri}
    log_path = Path(settings.home) / "logs" / f"serve-{model}-{port}.log"
    follower = ModelFollower(model, alias, port, log_path, resolve, env=env, workers=workers)

    def announce(version: str) -> None:
        url = f"http://{HOST}:{port}/invocations"
        if json_out:
            # one line per (re)start, flushed: a supervisor reads them as they come
            line = {"model": model, "alias": alias, "version": version, "url": url, "log": str(log_path)}
            typer.echo(json.dumps(line))
        else:
            typer.echo(f"serving {model}@{alias} = v{version} at {url} (log {log_path})")

    stopping = False

    def _stop(signum: int, frame: object) -> None:  # noqa: ARG001
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        try:
            announce(follower.start())
        except LookupError as exc:
            fail(str(exc))
        if not follow:
            while not stopping and follower.service is not None and follower.service.alive():
                time.sleep(1.0)
            return
        follower.run(poll, announce, until=lambda: stopping)
    except KeyboardInterrupt:
        pass
    finally:
        follower.stop()
