"""Prefect worker types of Evergreen (`prefect worker start --type evergreen-process`: workers/prefork.py).

Nothing is imported here: the worker's forkserver imports workers.preload, which must not pull in the
project's code.
"""
