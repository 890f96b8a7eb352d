"""Errors raised by the local stack (all are `StackError`s, which the CLI maps to exit codes)."""

from __future__ import annotations


class StackError(RuntimeError):
    """A service could not be started, checked or stopped."""


class PortInUseError(StackError):
    """A requested port is already bound by another process."""

    def __init__(
        self, port: int, setting: str | None = None, service: str | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.port = port
        self.setting = setting
        self.service = service
        what = f" for {service}" if service else ""
        hint = f"; set {setting} to another port (e.g. {setting}={port + 1})" if setting else ""
        super().__init__(f"port {port} on {host}{what} is already in use{hint}")


class StartupError(StackError):
    """A service exited or did not become healthy in time."""


class StackBusyError(StackError):
    """Another `evergreen up`/`down` holds the stack lock."""


class DeployError(StackError):
    """`prefect deploy` failed (services stay up)."""
