"""Serving a registered model with MLflow's own scoring server (`mlflow models serve`), and following
its alias: when `champion` moves, the server is restarted on the new version.

`mlflow models serve -m models:/NAME@champion` resolves the alias once, at start-up, so a running server
never sees a promotion. `ModelFollower` resolves the alias itself, serves the pinned
`models:/NAME/<version>` (so what is served is known exactly), and restarts on the same port when the
alias points elsewhere. A restart means a gap of a few seconds (the new server's start-up) during which
requests are refused: put a retrying client or a load balancer in front if that matters.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stack.net import HOST, ensure_port_free, wait_port_free
from stack.services import DEFAULT_START_TIMEOUT, Service, bin_path, spawn

logger = logging.getLogger(__name__)


def start_model_server(
    model_uri: str,
    port: int,
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    workers: int = 1,
    timeout: float = DEFAULT_START_TIMEOUT,
    die_with_parent: bool = False,
) -> Service:
    """`mlflow models serve` for `model_uri` on 127.0.0.1:port in this environment (no new virtualenv:
    the worker's environment already has the model's dependencies, pinned by requirements.lock)."""
    ensure_port_free(port, setting=None, service="model server")
    mlflow_bin = bin_path("mlflow")
    cmd = [mlflow_bin, "models", "serve", "-m", model_uri, "--env-manager", "local"]
    cmd += ["--host", HOST, "--port", str(port), "--workers", str(workers)]
    senv = dict(os.environ if env is None else env)
    # MLflow execs `uvicorn` by name through bash: the environment's bin dir must be on PATH.
    senv["PATH"] = os.pathsep.join([str(Path(mlflow_bin).parent), senv.get("PATH", "")])
    svc = spawn("model-server", cmd, log_path=log_path, env=senv, die_with_parent=die_with_parent)
    svc.port = port
    svc.url = f"http://{HOST}:{port}"
    svc.health_url = f"{svc.url}/ping"
    svc.extra = {"model_uri": model_uri}
    svc.wait_healthy(timeout)
    return svc


@dataclass
class ModelFollower:
    """Serve whatever version `alias` points at; `poll()` restarts the server when it moves."""

    model: str
    alias: str
    port: int
    log_path: Path
    resolve: Callable[[], str | None]  # the alias's version now (None: the alias does not exist)
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    workers: int = 1
    timeout: float = DEFAULT_START_TIMEOUT
    version: str | None = None
    service: Service | None = None

    def model_uri(self, version: str) -> str:
        return f"models:/{self.model}/{version}"

    def start(self) -> str:
        version = self.resolve()
        if version is None:
            raise LookupError(f"model {self.model!r} has no {self.alias!r} alias to serve yet")
        self._serve(version)
        return version

    def poll(self) -> str | None:
        """Restart on the alias's new version if it moved; returns that version, else None.

        A registry that cannot be read keeps the current version serving (logged, retried next poll)."""
        try:
            version = self.resolve()
        except Exception as exc:  # noqa: BLE001  MLflow down must not take serving down
            logger.warning(
                "cannot read %s@%s (%s); still serving v%s", self.model, self.alias, exc, self.version
            )
            return None
        if version is None or version == self.version:
            return None
        logger.info(
            "%s@%s moved from v%s to v%s: restarting the server",
            self.model,
            self.alias,
            self.version,
            version,
        )
        self.stop()
        wait_port_free(self.port, timeout=30)
        self._serve(version)
        return version

    def _serve(self, version: str) -> None:
        self.service = start_model_server(
            self.model_uri(version),
            self.port,
            log_path=self.log_path,
            env=self.env,
            workers=self.workers,
            timeout=self.timeout,
        )
        self.version = version

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None

    def run(self, interval: float, on_change: Callable[[str], None], until: Callable[[], bool]) -> None:
        """Poll every `interval` seconds until `until()` is true; `on_change(version)` after each restart."""
        while not until():
            time.sleep(interval)
            if self.service is not None and not self.service.alive():
                raise RuntimeError(
                    f"the model server exited; log {self.log_path}:\n{self.service.log_tail()}"
                )
            moved = self.poll()
            if moved is not None:
                on_change(moved)
