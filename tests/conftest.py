"""Root conftest: only what every suite needs.

- SIGTERM becomes KeyboardInterrupt, so session fixtures still stop their servers.
- The real-server fixtures (``mlflow_server``, ``prefect_server``, ``prefect_backend_server``,
  ``prefect_worker``, ``stack_env``, ...) live in tests/support/servers.py, registered here as a
  plugin because pytest accepts ``pytest_plugins`` only in the root conftest. They start nothing
  until a test of the integration, flows or e2e suite requests them.
"""

from __future__ import annotations

import signal
import threading

import pytest

pytest_plugins = ["tests.support.servers"]


def pytest_configure(config: pytest.Config) -> None:
    """Turn SIGTERM (e.g. from `timeout pytest ...`) into KeyboardInterrupt, so session fixtures still
    stop their servers. Servers also get SIGTERM from the kernel if pytest dies by SIGKILL."""
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):

        def _interrupt(signum, frame):  # noqa: ARG001
            raise KeyboardInterrupt(f"signal {signum}")

        signal.signal(signal.SIGTERM, _interrupt)
