"""The load suite (tests/load): its own PostgreSQL-backed stack for minutes, so not part of `make test`.

Its tests carry the `load` marker and run only when asked for: `make load-short` (or
`pytest -m load tests/load`). The full 10-minute run is `make load` (benchmarks/load.py). `make test`
runs the bounded CI form instead: tests/e2e/test_load_burst.py (3 models, a 30-event burst, the same
accounting) on the e2e suite's session servers.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "load: load tests on PostgreSQL (make load-short; not in make test)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "load" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="load test: run with `make load-short` (pytest -m load tests/load)")
    for item in items:
        if item.get_closest_marker("load"):
            item.add_marker(skip)
