"""The retrain flow's on_failure hook: emit `evergreen.retrain.failed`. Never raises, never masks the error."""

from __future__ import annotations

import logging
from typing import Any

from adapters import prefect_api
from evergreen.events import Event

log = logging.getLogger(__name__)


def failure_payload(
    parameters: dict[str, Any], flow_run_id: str, error: BaseException | None
) -> dict[str, Any]:
    """Event payload from the run's parameters and the exception that failed it."""
    return {
        "reason": parameters.get("reason"),
        "error_class": type(error).__name__ if error is not None else None,
        "error": str(error) if error is not None else None,
        "flow_run_id": flow_run_id,
        "data_version": parameters.get("data_rev"),
    }


def on_retrain_failed(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect on_failure hook; the run stays Failed with its own error whatever happens here."""
    try:
        error = state.result(raise_on_failure=False)
        params = dict(flow_run.parameters or {})
        payload = failure_payload(
            params, str(flow_run.id), error if isinstance(error, BaseException) else None
        )
        prefect_api.emit(Event.RETRAIN_FAILED, str(params.get("model", "")), payload)
    except Exception:  # the hook must never raise: log and keep the original failure
        log.exception("could not emit %s", Event.RETRAIN_FAILED.value)
