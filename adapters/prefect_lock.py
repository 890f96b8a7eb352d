"""The per-model retrain lock: Prefect global concurrency limit `evergreen-retrain-<model>` (1 slot).

Deployment runs and in-process CLI runs take the same slot, so score -> gate -> register -> alias of one
model never interleave. The slot is held with a lease that the client renews while the run lives; a
killed holder stops renewing and the server's repossessor frees the slot once the lease lapses
(LEASE_SECONDS, the server's minimum, plus up to one repossessor loop, 15 s by default).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)

LEASE_SECONDS = 60.0  # the server rejects shorter leases
WAIT_SECONDS = 3600.0  # how long a run queues behind another retrain of the same model


class LockTimeout(RuntimeError):
    """Another retrain of the model held the lock for longer than the wait bound."""


def limit_name(model: str) -> str:
    """The name `evergreen up` (stack.limits) creates for the model."""
    return f"evergreen-retrain-{model}"


def ensure_limit(name: str) -> None:
    """Create the 1-slot limit if it is missing (idempotent; a limit tuned by an operator is kept)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as c:
        try:
            c.read_global_concurrency_limit_by_name(name)
            return
        except ObjectNotFound:
            pass
        try:
            c.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
            logger.info("created global concurrency limit %s (1 slot)", name)
        except ObjectAlreadyExists:
            pass  # another run created it between our read and our create


@contextmanager
def model_lock(model: str, wait_seconds: float = WAIT_SECONDS) -> Iterator[None]:
    """Hold the model's retrain slot for the duration of the block."""
    from prefect.concurrency.sync import concurrency

    name = limit_name(model)
    ensure_limit(name)
    acquired = False
    try:
        # strict: a missing limit would silently not lock. Renewal failures do not kill the run:
        # the compare-and-swap before the alias move catches a lapsed lease.
        with concurrency(
            name,
            occupy=1,
            timeout_seconds=wait_seconds,
            lease_duration=LEASE_SECONDS,
            strict=True,
            raise_on_lease_renewal_failure=False,
        ):
            acquired = True
            yield
    except TimeoutError as exc:
        if acquired:
            raise
        raise LockTimeout(
            f"another retrain of {model} held {name} for over {wait_seconds:.0f} s; try again later"
        ) from exc
