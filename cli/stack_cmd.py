"""`evergreen up / status / down`: the local Prefect + MLflow + worker stack (see docs/stack.md)."""

from __future__ import annotations

import json
import os

import typer

EXIT_ERROR = 1
EXIT_PORT_TAKEN = 2
EXIT_BUSY = 3


def _err(msg: str) -> None:
    typer.echo(msg, err=True)


def _fail(exc: Exception, as_json: bool) -> None:
    from stack import PortInUseError, StackBusyError

    code = (
        EXIT_PORT_TAKEN
        if isinstance(exc, PortInUseError)
        else EXIT_BUSY
        if isinstance(exc, StackBusyError)
        else EXIT_ERROR
    )
    if as_json:
        payload: dict[str, object] = {"ok": False, "error": str(exc), "type": type(exc).__name__}
        if isinstance(exc, PortInUseError):
            payload.update({"port": exc.port, "setting": exc.setting})
        typer.echo(json.dumps(payload, indent=2))
    _err(f"error: {exc}")
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    @app.command()
    def up(
        as_json: bool = typer.Option(False, "--json", help="Print the stack state as JSON."),
        no_deploy: bool = typer.Option(False, "--no-deploy", help="Do not run `prefect deploy --all`."),
        auth: bool = typer.Option(
            False,
            "--auth",
            help="Run both servers with basic auth (same as EVERGREEN_AUTH=1; see docs/security.md).",
        ),
    ) -> None:
        """Start (or reuse) the Prefect server, MLflow server and process worker; deploy prefect.yaml."""
        from stack import StackError, local

        cfg = local.StackConfig.from_settings()
        cfg.auth = cfg.auth or auth
        try:
            st = local.up(cfg, deploy=not no_deploy, progress=_err)
        except (StackError, OSError) as exc:
            _fail(exc, as_json)
            return
        if as_json:
            st["ok"] = True
            typer.echo(json.dumps(st, indent=2, default=str))
            return
        _print_up(st)

    @app.command()
    def status(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
        """Each service of the local stack: port, PID, health. Exit code 1 unless all are healthy."""
        from stack import local
        from stack.auth import redact_env

        st = local.status(local.StackConfig.from_settings())
        st["env"] = redact_env(st.get("env") or {})  # stack.json holds none; never echo one anyway
        if as_json:
            typer.echo(json.dumps(st, indent=2, default=str))
        else:
            _print_status(st)
        if not st["healthy"]:
            raise typer.Exit(EXIT_ERROR)

    @app.command()
    def down(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
        """Stop exactly what `evergreen up` started, by PID."""
        from stack import StackError, local

        try:
            out = local.down(local.StackConfig.from_settings(), progress=_err)
        except (StackError, OSError) as exc:
            _fail(exc, as_json)
            return
        if as_json:
            typer.echo(json.dumps(out, indent=2, default=str))
        elif not out["services"]:
            typer.echo(f"nothing recorded in {out['home']}; nothing to stop")
        else:
            typer.echo("stack stopped")


def _print_up(st: dict) -> None:
    actions = st.get("actions", {})
    typer.echo(f"Evergreen stack up in {st.get('up_seconds', 0):.1f}s (home {st['home']})")
    for name, svc in st["services"].items():
        where = svc.get("url") or f"pool {svc.get('extra', {}).get('pool')}"
        secs = svc.get("startup_seconds")
        timing = f"  ready in {secs:.1f}s" if secs and actions.get(name) == "started" else ""
        typer.echo(f"  {name:<15} {actions.get(name, '?'):<8} pid {svc['pid']:<8} {where}{timing}")
    dep = st.get("deploy", {})
    typer.echo(f"Deploy: {dep.get('status')}" + (f" ({dep.get('reason')})" if dep.get("reason") else ""))
    if st.get("limits"):
        typer.echo("Concurrency limits: " + ", ".join(f"{k} ({v})" for k, v in st["limits"].items()))
    if st.get("work_queues"):  # retrain priorities: queue retrain-p<N> (docs/priorities.md)
        typer.echo("Work queues: " + ", ".join(f"{k} ({v})" for k, v in st["work_queues"].items()))
    urls = st.get("urls", {})
    typer.echo(f"Prefect UI: {urls.get('prefect_ui')}")
    typer.echo(f"MLflow UI:  {urls.get('mlflow_ui')}")
    typer.echo(f"Logs:       {st.get('logs_dir')}")
    typer.echo(f"Use the stack from a shell (or: source {st.get('env_file')}):")
    for k in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI"):
        typer.echo(f"  export {k}={st['env'][k]}")
    auth = st.get("auth") or {}
    if auth.get("enabled"):
        typer.echo(
            f"Auth: on (Prefect basic auth; MLflow basic-auth app, user {auth.get('mlflow_user')}). "
            "Clients also need PREFECT_API_AUTH_STRING, MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD "
            "(not written to stack.env)."
        )


def _print_status(st: dict) -> None:
    if not st["recorded"]:
        typer.echo(f"no stack recorded in {st['home']} (run `evergreen up`)")
        return
    if (st.get("auth") or {}).get("enabled"):
        typer.echo(
            f"auth: on (MLflow user {st['auth'].get('mlflow_user')}); credentials from the environment"
        )
        if not (
            os.environ.get("PREFECT_API_AUTH_STRING") or os.environ.get("PREFECT_SERVER_API_AUTH_STRING")
        ):
            typer.echo(
                "note: export PREFECT_API_AUTH_STRING, or the worker's heartbeat cannot be read (FAIL)"
            )
    typer.echo(f"{'service':<15} {'port':<6} {'pid':<8} {'running':<8} {'health':<8} url")
    for r in st["services"]:
        health = "ok" if r["healthy"] else "-" if not r["running"] else "FAIL"
        where = r.get("url") or (f"pool {r['pool']}" if r.get("pool") else "")
        typer.echo(
            f"{r['name']:<15} {r.get('port') or '-':<6} {r.get('pid') or '-':<8} "
            f"{'yes' if r['running'] else 'no':<8} {health:<8} {where}"
        )
