"""Registry of sub-command modules. Each module exposes `register(app)`; add one line per module."""

from __future__ import annotations

import importlib

import typer

MODULES = [
    "cli.data_cmds",  # seed, ingest, ingest-labels
    "cli.retrain_cmd",  # retrain
    "cli.rollback_cmd",  # rollback
    "cli.monitor_cmd",  # monitor
    "cli.backtest_cmd",  # backtest
    "cli.search_cmd",  # backtest-search (policy grid, accuracy-vs-CPU Pareto front)
    "cli.strategies_cmd",  # backtest-strategies (batch vs online vs active learning)
    "cli.active_cmd",  # request-labels (active learning label queue)
    "cli.stack_cmd",  # up, status, down
    "cli.demo_cmd",  # demo
    "cli.deployments_cmd",  # deployments render
    "cli.history_cmd",  # history (audit log)
    "cli.serve_cmd",  # serve (MLflow scoring server following an alias)
    "cli.notify_cmd",  # notify setup, notify apply
    "cli.approve_cmd",  # approve (answer a retrain paused for approval)
]


def register(app: typer.Typer) -> None:
    for name in MODULES:
        importlib.import_module(name).register(app)
