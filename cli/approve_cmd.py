"""`evergreen approve`: answer a retrain paused for approval (`promotion.approval`), or list them.

The paused run waits in its own process (worker or CLI); this command resumes it through the Prefect API
with the typed input of tasks/approval.ApprovalInput, exactly as the form in the Prefect UI does.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import typer

from cli.output import fail, print_json, run_guarded

FLOW_NAME = "retrain"


def register(app: typer.Typer) -> None:
    app.command("approve")(approve)


def approve(
    target: str = typer.Argument(
        None, help="Model name (its one paused retrain) or a paused retrain's flow-run id."
    ),
    decision: bool = typer.Option(
        None, "--approve/--reject", help="Make the waiting version champion, or reject it."
    ),
    approver: str = typer.Option(
        None, "--approver", help="Who decides (default: EVERGREEN_ACTOR, else user:<login>)."
    ),
    comment: str = typer.Option("", "--comment", help="Why; recorded on the version and in the audit log."),
    list_: bool = typer.Option(False, "--list", help="List the retrains waiting for approval."),
    json_out: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Approve or reject the version a paused retrain waits on (docs/cli.md#evergreen-approve)."""
    if list_:
        rows = run_guarded(lambda: paused_retrains(target), as_json=json_out)
        _print_list(rows, json_out)
        return
    if not target:
        fail("name a model or a flow-run id to answer (or use --list)", as_json=json_out)
    if decision is None:
        fail("say --approve or --reject", as_json=json_out)
    who = (approver or "").strip() or _default_approver()
    out = run_guarded(lambda: answer(target, decision, who, comment), as_json=json_out)
    if json_out:
        print_json({"status": "ok", **out})
    else:
        verb = "approved" if decision else "rejected"
        typer.echo(
            f"{out['model']}: v{out.get('version') or '?'} {verb} by {who}; "
            f"flow run {out['flow_run_id']} resumed (it moves the alias and records the decision)"
        )


def _default_approver() -> str:
    from evergreen.audit import os_login

    return os.environ.get("EVERGREEN_ACTOR", "").strip() or f"user:{os_login() or 'unknown'}"


def paused_retrains(model: str | None = None) -> list[dict[str, Any]]:
    """The paused retrain flow runs (of `model`, when given), oldest first."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
            ),
        )
    rows = [_row(r) for r in runs]
    rows = [r for r in rows if model is None or r["model"] == model]
    return sorted(rows, key=lambda r: r["paused_since"] or "")


def _row(run: Any) -> dict[str, Any]:
    state, model = run.state, str(run.parameters.get("model") or "")
    details = state.state_details if state else None
    return {
        "flow_run_id": str(run.id),
        "flow_run_name": run.name,
        "model": model,
        "version": _waiting_version(model, str(run.id)),
        "paused_since": state.timestamp.isoformat() if state and state.timestamp else None,
        "timeout_at": details.pause_timeout.isoformat() if details and details.pause_timeout else None,
    }


def _waiting_version(model: str, flow_run_id: str) -> str | None:
    """The version the run registered (tagged approval_flow_run_id); None when MLflow cannot say."""
    from adapters import mlflow_registry as registry
    from evergreen.approval import FLOW_RUN_TAG
    from evergreen.settings import get_settings

    if not model:
        return None
    try:
        found = registry.client(get_settings()).search_model_versions(
            f"name = '{model}' and tags.{FLOW_RUN_TAG} = '{flow_run_id}'"
        )
    except Exception:  # noqa: BLE001  the listing stays useful without the version
        return None
    return str(found[0].version) if found else None


def answer(target: str, approve: bool, approver: str, comment: str) -> dict[str, Any]:
    """Resume the paused retrain `target` (a flow-run id, or a model with exactly one) with the answer."""
    from prefect.flow_runs import resume_flow_run

    run = _resolve(target)
    resume_flow_run(
        uuid.UUID(run["flow_run_id"]),
        run_input={"approve": approve, "approver": approver, "comment": comment},
    )
    return {**run, "approve": approve, "approver": approver, "comment": comment}


def _resolve(target: str) -> dict[str, Any]:
    try:
        run_id = str(uuid.UUID(target))
    except ValueError:
        run_id = None
    paused = paused_retrains(None if run_id else target)
    if run_id is not None:
        match = [r for r in paused if r["flow_run_id"] == run_id]
        if not match:
            raise ValueError(f"flow run {run_id} is not a paused retrain (see `evergreen approve --list`)")
        return match[0]
    if not paused:
        raise ValueError(f"no retrain of {target} is waiting for approval (see `evergreen approve --list`)")
    if len(paused) > 1:
        ids = ", ".join(r["flow_run_id"] for r in paused)
        raise ValueError(f"{len(paused)} retrains of {target} wait for approval; name one flow run: {ids}")
    return paused[0]


def _print_list(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("no retrain is waiting for approval")
    for r in rows:
        typer.echo(
            f"{r['model']} v{r['version'] or '?'}  flow run {r['flow_run_id']} ({r['flow_run_name']})  "
            f"paused since {r['paused_since']}, rejected at {r['timeout_at']}"
        )
