"""Imported by the `evergreen-process` worker's forkserver: the libraries every flow run would import.

The list follows benchmarks/event_imports.py (what a retrain, monitor or ingest run pulls in). Only
third-party modules: the project's own code is imported by each run from its working directory.
"""

from __future__ import annotations

import sys

PRELOAD = (
    "prefect.engine",
    "prefect.flow_engine",
    "prefect.cli",  # `prefect worker start` is the worker's __main__, which each child re-imports
    "pandas",
    "pyarrow",
    "scipy.stats",
    "sklearn.metrics",
    "lightgbm",
    "mlflow",
    "mlflow.pyfunc",
    "great_expectations",
    "dvc.api",
    "workers.prefork",  # the child's entry point (`_run_engine`): unpickling it must not import anything
)

for _name in PRELOAD:
    try:
        __import__(_name)
    except Exception as exc:  # noqa: BLE001 - a failed preload must not take the forkserver down
        print(
            f"evergreen-process: preloading {_name} failed ({exc!r}); runs import it themselves",
            file=sys.stderr,
        )
