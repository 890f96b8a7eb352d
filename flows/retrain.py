"""The retrain flow, step by step as in DESIGN.md's loop:

check policy (cooldown) -> pull -> validate -> train (a full fit, or with `training.update` a warm-start
update of the champion) -> [lock: recover -> score -> gate -> register -> (approval pause, when
`promotion.approval` asks a person) -> promote] -> audit -> announce.

Every trained model is registered with its lineage; only a passing gate moves the `champion` alias.
Any failure before the alias move leaves the registry and the champion exactly as they were.
The per-model lock (Prefect global concurrency `evergreen-retrain-<model>`) serialises score -> alias
across deployment and CLI runs; the gate judges only hold-out rows neither model trained on.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from prefect import flow

from flows.retrain_outcome import Reason, RetrainOutcome
from tasks.retrain_failed import on_retrain_failed

if TYPE_CHECKING:
    from tasks.data import ValidationFailed

__all__ = ["Reason", "RetrainOutcome", "ValidationFailed", "retrain"]


@flow(name="retrain", log_prints=False, on_failure=[on_retrain_failed])
def retrain(
    model: str,
    reason: Reason = "manual",
    data_rev: str | None = None,
    trigger_event_id: str | None = None,
    force: bool = False,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Retrain `model` on a pinned data version and promote it only if it passes the gate.

    Args:
        model: name of `models/<model>.yaml`.
        reason: why this run happened; recorded on the model version and in events.
        data_rev: registry git rev to train on (default: the registry's HEAD).
        trigger_event_id: id of the Prefect event that started this run, if any.
        force: train even inside the cooldown.
        overrides: dotted spec keys to override for this run, e.g. {"training.window.kind": "all"}.
    """
    started = time.perf_counter()
    # The steps (and pandas, scikit-learn, SciPy, GX, LightGBM, MLflow, DVC) are imported here, after
    # the run is Running: a process worker's flow-run process imports this module before that.
    from flows.retrain_run import run

    return run(model, reason, data_rev, trigger_event_id, force, overrides, started)


def __getattr__(name: str) -> Any:
    if name == "ValidationFailed":  # kept importable from here without importing pandas up front
        from tasks.data import ValidationFailed

        return ValidationFailed
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
