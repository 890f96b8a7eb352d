"""Evergreen's pure core: specs, drift, metrics, training, gate, policy and backtest. Never imports Prefect."""

__version__ = "0.1.0"
