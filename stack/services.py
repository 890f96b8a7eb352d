"""One started process (`Service`): spawn it in its own session with a log file, wait until healthy,
stop it with its whole tree. Serialisable to the state file of `evergreen up`."""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stack.errors import StartupError
from stack.net import http_get, redact
from stack.processes import DEFAULT_STOP_TIMEOUT, pid_alive, process_start_time, stop_pid

DEFAULT_START_TIMEOUT = 120.0


def bin_path(name: str) -> str:
    """The console script `name` next to this interpreter (the venv), else on PATH."""
    cand = Path(sys.executable).parent / name
    return str(cand) if cand.exists() else name


def tail(path: Path | str | None, lines: int = 40) -> str:
    """Last `lines` lines of a log file ('' when missing)."""
    if not path:
        return ""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64_000))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Service:
    """One started process. Serialisable to the state file (`to_dict` / `from_dict`)."""

    name: str
    pid: int
    log_path: str
    cmd: list[str]
    port: int | None = None
    url: str | None = None
    health_url: str | None = None
    start_time: float | None = None  # kernel start time of pid, guards against PID reuse
    startup_seconds: float | None = None  # spawn -> healthy
    spawned_at: float | None = None  # epoch seconds
    extra: dict[str, object] = field(default_factory=dict)
    _proc: subprocess.Popen | None = field(default=None, repr=False, compare=False)
    _probe: Callable[[], bool] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, object]:
        return {
            k: copy.deepcopy(getattr(self, k)) for k in self.__dataclass_fields__ if not k.startswith("_")
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> Service:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__ and not k.startswith("_")}
        return cls(**known)  # type: ignore[arg-type]

    def alive(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            return False
        return pid_alive(self.pid, self.start_time)

    def healthy(self, timeout: float = 3.0) -> bool:
        if not self.alive():
            return False
        if self.health_url is None:
            return True
        return http_get(self.health_url, timeout=timeout)[0] == 200

    def wait_healthy(self, timeout: float = DEFAULT_START_TIMEOUT) -> float:
        """Block until healthy (see `wait_healthy`); stops the process and re-raises on failure."""
        try:
            self.startup_seconds = wait_healthy(self, timeout=timeout, check=self._probe)
        except BaseException:
            self.stop()
            raise
        return self.startup_seconds

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> bool:
        """Stop this service and its children. True when something was running."""
        stopped = stop_pid(self.pid, start_time=self.start_time, timeout=timeout, proc=self._proc)
        pid_file = self.extra.get("pid_file")
        if pid_file:  # a PID file we wrote (see prefect_server.py): drop it only if it is still ours
            with contextlib.suppress(OSError):
                if Path(str(pid_file)).read_text().strip() == str(self.pid):
                    Path(str(pid_file)).unlink()
        return stopped


def _with_pdeathsig(cmd: list[str]) -> list[str]:
    """Prefix `cmd` so the kernel SIGTERMs it when its parent dies, even by SIGKILL (Linux setpriv)."""
    setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    return [setpriv, "--pdeathsig", "TERM", "--", *cmd] if setpriv else cmd


def spawn(
    name: str,
    cmd: list[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    die_with_parent: bool = False,
) -> Service:
    """Start `cmd` in its own session with stdout/stderr appended to `log_path`.

    `die_with_parent`: the process gets SIGTERM when its parent dies (the PID stays the same).
    For test fixtures, not for `evergreen up`, whose services outlive the command.
    """
    if die_with_parent:
        cmd = _with_pdeathsig(cmd)
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ if env is None else env)
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    shown = " ".join(redact(c) if "://" in c else c for c in cmd)
    with open(log_path, "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} start: {shown}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=str(cwd) if cwd else None,
            start_new_session=True,
            close_fds=True,
        )
    svc = Service(
        name=name, pid=proc.pid, log_path=str(log_path), cmd=list(cmd), _proc=proc, spawned_at=time.time()
    )
    svc.start_time = process_start_time(proc.pid)
    return svc


def wait_healthy(
    svc: Service,
    timeout: float = DEFAULT_START_TIMEOUT,
    check: Callable[[], bool] | None = None,
    interval: float = 0.25,
) -> float:
    """Block until `check()` (default: GET health_url == 200). Returns seconds since spawn.

    Raises StartupError, with the log tail, when the process exits or the timeout passes.
    """
    t0 = time.monotonic()
    deadline = t0 + timeout
    health_url = svc.health_url
    probe = check or (lambda: http_get(health_url, timeout=2.0)[0] == 200 if health_url else True)
    while True:
        if not svc.alive():
            code = svc._proc.poll() if svc._proc is not None else None
            raise StartupError(
                f"{svc.name} (pid {svc.pid}) exited with code {code} before becoming healthy; "
                f"log {svc.log_path}:\n{svc.log_tail()}"
            )
        if probe():
            return time.time() - svc.spawned_at if svc.spawned_at else time.monotonic() - t0
        if time.monotonic() > deadline:
            raise StartupError(
                f"{svc.name} (pid {svc.pid}) not healthy after {timeout:.0f}s"
                f" ({svc.health_url or 'custom check'}); log {svc.log_path}:\n{svc.log_tail()}"
            )
        time.sleep(interval)
