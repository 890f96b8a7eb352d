"""Fault-injection points for the fault suite (tests/faults): off unless EVERGREEN_FAULT names them.

`EVERGREEN_FAULT=retrain:after-register` (comma-separated for several) SIGKILLs the process at that
point, the way a crash or an OOM kill would. Points: ingest:after-write (new rows written, not yet
committed), ingest:after-commit (committed, not yet pushed or announced), retrain:after-register (version
created, no alias yet), retrain:after-alias (champion alias moved, promotion tags not yet written).
"""

from __future__ import annotations

import logging
import os
import signal

logger = logging.getLogger(__name__)

ENV = "EVERGREEN_FAULT"


def fault_point(name: str) -> None:
    """Kill this process here when the environment asks for it (tests only)."""
    if name in {p.strip() for p in os.environ.get(ENV, "").split(",")}:
        logger.warning("fault injection: SIGKILL at %s", name)
        os.kill(os.getpid(), signal.SIGKILL)
