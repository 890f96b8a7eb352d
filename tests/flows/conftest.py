"""Fixtures for in-process flow tests against Prefect's test harness (a throwaway SQLite server).

- ``prefect_harness`` (function) -> the harness's API URL, active for the requesting test only.
  The server itself is started once per session (``prefect_test_harness``) by ``prefect_harness_session``::

      def test_my_flow(prefect_harness):
          assert my_flow() == ...

Why two fixtures: ``prefect_test_harness`` points Prefect's settings at its server through a context
variable, which would otherwise stay set for the rest of the session and silently redirect tests that
talk to the real servers of tests/support/servers.py (``stack_env``; test_monitor_flow uses them). So the harness is entered once in a
private copy of the context, and each test that asks for it gets the harness's API URL for its own
duration only.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Iterator

import pytest

HARNESS_START_TIMEOUT = int(os.environ.get("EVERGREEN_TEST_START_TIMEOUT", "240"))


@pytest.fixture(scope="session")
def prefect_harness_session() -> Iterator[str]:
    """Start prefect_test_harness once; yield its API URL without leaving its settings active."""
    import prefect.context
    from prefect.testing.utilities import prefect_test_harness

    ctx = contextvars.copy_context()
    harness = prefect_test_harness(server_startup_timeout=HARNESS_START_TIMEOUT)
    prior_global = prefect.context.GLOBAL_SETTINGS_CONTEXT

    def enter() -> str:
        from prefect.settings import PREFECT_API_URL

        harness.__enter__()
        return str(PREFECT_API_URL.value())

    api_url = ctx.run(enter)
    # The harness also swaps the process-global settings context; put the caller's back.
    prefect.context.GLOBAL_SETTINGS_CONTEXT = prior_global
    try:
        yield api_url
    finally:
        ctx.run(harness.__exit__, None, None, None)
        prefect.context.GLOBAL_SETTINGS_CONTEXT = prior_global


@pytest.fixture
def prefect_harness(prefect_harness_session: str) -> Iterator[str]:
    """Point Prefect at the harness server for this test only; yields its API URL."""
    from prefect.events.worker import EventsWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_harness_session}):
        EventsWorker.drain_all(timeout=30)
        yield prefect_harness_session
        # The cached events worker keeps the harness URL; stop it so later tests get their own.
        EventsWorker.drain_all(timeout=30)
