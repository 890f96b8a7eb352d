"""Processes by PID: start times, liveness, descendants, and stopping a whole process tree.

psutil walks the process table (children, status, process groups). The start time is read from
``/proc/<pid>/stat`` in kernel clock ticks since boot, not from ``psutil.Process.create_time()``: ticks
do not move when the wall clock is adjusted (NTP), and they are the unit of the start times already
recorded in existing ``stack.json`` files. A PID is only signalled while its start time still matches,
so a recycled PID is never killed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass

import psutil

from stack.errors import StackError

logger = logging.getLogger(__name__)

DEFAULT_STOP_TIMEOUT = 15.0
KILL_GRACE = 5.0  # seconds to wait for SIGKILL to take effect


def process_start_time(pid: int) -> float | None:
    """Kernel start time of `pid` (clock ticks since boot) or None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode()
        # comm (field 2) may contain spaces and parentheses: the fields we want follow the last ')'
        return float(stat[stat.rindex(")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _reap(pid: int) -> None:
    """Collect the exit status of our own zombie child (no-op for other processes)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def pid_alive(pid: int, start_time: float | None = None) -> bool:
    """True when `pid` runs (not a zombie) and, if given, started at `start_time`."""
    if pid <= 0:
        return False
    try:
        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            _reap(pid)
            return False
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        pass  # exists, owned by someone else
    if start_time is not None:
        now = process_start_time(pid)
        if now is None or abs(now - start_time) > 1e-6:
            return False
    return True


def descendants(pid: int) -> list[int]:
    """PIDs of all descendants of `pid` (children first-level and deeper); [] when it is gone."""
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group `pgid`."""
    out = []
    for pid in psutil.pids():
        try:
            if os.getpgid(pid) == pgid and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except (OSError, psutil.Error):
            continue
    return out


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class _Tree:
    """A process, its session's group, and the descendants seen before the first signal.

    Descendants are snapshotted up front: once the leader exits, its children are re-parented and can
    no longer be found from it (the process worker starts flow runs in sessions of their own).
    """

    pid: int
    start_time: float | None
    kids: dict[int, float | None]
    proc: subprocess.Popen | None = None

    @classmethod
    def snapshot(cls, pid: int, start_time: float | None, proc: subprocess.Popen | None) -> _Tree:
        kids = {k: process_start_time(k) for k in descendants(pid)}
        return cls(pid=pid, start_time=start_time, kids=kids, proc=proc)

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(self.pid) == self.pid:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)
        for kid, started in self.kids.items():
            if pid_alive(kid, started):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(kid, sig)

    def remaining(self) -> list[int]:
        """What still runs: the leader, snapshotted descendants, and (as -pgid) other group members."""
        if self.proc is not None:
            self.proc.poll()
        else:
            _reap(self.pid)
        left = [self.pid] if pid_alive(self.pid, self.start_time) else []
        left += [k for k, started in self.kids.items() if pid_alive(k, started)]
        if self.pid not in left and _group_exists(self.pid) and group_members(self.pid):
            left.append(-self.pid)  # group members we did not see as descendants
        return left

    def wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.remaining():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True


def _settle(proc: subprocess.Popen | None, timeout: float) -> None:
    """Reap our own Popen child so it leaves no zombie."""
    if proc is not None:
        with contextlib.suppress(Exception):
            proc.wait(timeout=timeout)


def stop_pid(
    pid: int,
    *,
    start_time: float | None = None,
    timeout: float = DEFAULT_STOP_TIMEOUT,
    proc: subprocess.Popen | None = None,
) -> bool:
    """SIGTERM the process group led by `pid` plus all its descendants; SIGKILL after `timeout`.

    Returns False (and signals nothing) when `pid` is gone or, with `start_time`, is another process.
    Raises StackError when something still runs after SIGKILL.
    """
    if not pid_alive(pid, start_time):
        _settle(proc, 0.1)
        return False
    tree = _Tree.snapshot(pid, start_time, proc)
    tree.signal(signal.SIGTERM)
    if not tree.wait_gone(timeout):
        logger.warning("pid %s did not stop after SIGTERM within %.0fs; sending SIGKILL", pid, timeout)
        tree.signal(signal.SIGKILL)
        tree.wait_gone(KILL_GRACE)
    _settle(proc, 1.0)
    left = tree.remaining()
    if left:
        raise StackError(f"could not stop pid {pid}; still running: {left}")
    return True
