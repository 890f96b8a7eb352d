"""`prefect --no-prompt deploy --all` for `evergreen up`, run in the background while MLflow starts."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stack.auth import without_server_secrets
from stack.config import StackConfig, child_env
from stack.prefect_worker import launch_cmd
from stack.processes import stop_pid
from stack.services import bin_path

Progress = Callable[[str], None]


def deployment_pools(prefect_yaml: Path) -> set[str]:
    """Work pool names the deployments in a prefect.yaml use (templated names are skipped)."""
    import yaml

    try:
        doc = yaml.safe_load(prefect_yaml.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return set()
    pools = set()
    for dep in doc.get("deployments") or []:
        name = ((dep or {}).get("work_pool") or {}).get("name")
        if isinstance(name, str) and "{{" not in name:
            pools.add(name)
    return pools


def start_deploy(
    cfg: StackConfig, env: dict[str, str], deploy: bool, progress: Progress, *, gated: bool = False
) -> tuple[subprocess.Popen | None, dict[str, Any]]:
    """Start the deploy (or say why it is skipped); `finish_deploy` waits for it.

    `gated`: spawn it now but let it deploy only after `release_deploy` (stack/launch.py --wait-stdin):
    its Prefect import overlaps the servers' start-up. `abort_deploy` stops a deploy never released.
    """
    root = cfg.project_root
    if not deploy:
        return None, {"status": "skipped", "reason": "--no-deploy"}
    if root is None or not (root / "prefect.yaml").is_file():
        progress(f"warning: no prefect.yaml in {root}; skipping deploy")
        return None, {"status": "skipped", "reason": f"no prefect.yaml in {root}"}
    for pool in sorted(deployment_pools(root / "prefect.yaml") - {cfg.work_pool}):
        progress(
            f"warning: prefect.yaml deploys to work pool {pool!r} but the worker polls {cfg.work_pool!r} "
            "(EVERGREEN_WORK_POOL); those runs will wait for another worker"
        )
    log = cfg.logs_dir / "deploy.log"
    args = ["--no-prompt", "deploy", "--all"]
    if not gated:
        progress(f"deploying {root / 'prefect.yaml'} (log {log})")
    with open(log, "ab") as fh:
        fh.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} prefect {' '.join(args)}\n".encode())
        fh.flush()
        proc = subprocess.Popen(
            [*launch_cmd("--wait-stdin"), *args] if gated else [bin_path("prefect"), *args],
            cwd=str(root),
            env=without_server_secrets(child_env(cfg, env)),  # clients need no server secret
            stdin=subprocess.PIPE if gated else subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc, {"status": "running", "log": str(log), "t0": time.monotonic()}


def release_deploy(
    cfg: StackConfig, proc: subprocess.Popen | None, info: dict[str, Any], progress: Progress
) -> None:
    """Let a gated deploy (`start_deploy(..., gated=True)`) run now; its seconds count from here."""
    if proc is None or proc.stdin is None:
        return
    progress(f"deploying {(cfg.project_root or Path.cwd()) / 'prefect.yaml'} (log {info.get('log')})")
    info["t0"] = time.monotonic()
    try:
        proc.stdin.write(b"go\n")
        proc.stdin.close()
    except OSError:  # it died already (e.g. a broken venv): finish_deploy reports its exit code
        pass


def abort_deploy(proc: subprocess.Popen | None) -> None:
    """Stop a deploy that `up` no longer wants (it failed before or while deploying), held or running."""
    if proc is None or proc.poll() is not None:
        return
    if proc.stdin is not None and not proc.stdin.closed:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    stop_pid(proc.pid, proc=proc)


def finish_deploy(
    cfg: StackConfig, proc: subprocess.Popen | None, info: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    """Wait for the deploy started by `start_deploy`; record its exit code and duration."""
    if proc is None:
        return info
    t0 = info.pop("t0")
    try:
        rc = proc.wait(timeout=max(60.0, cfg.start_timeout * 2))
    except subprocess.TimeoutExpired:
        stop_pid(proc.pid, proc=proc)
        rc = -1
    info.update({"returncode": rc, "seconds": round(time.monotonic() - t0, 2)})
    info["status"] = "deployed" if rc == 0 else "failed"
    progress(f"deploy {info['status']} in {info['seconds']:.1f}s")
    return info


def deploy_prefect_file(
    prefect_file: Path, env: dict[str, str], *, cwd: Path, timeout: float = 1800
) -> float:
    """`prefect --no-prompt deploy --all --prefect-file FILE`, waited for; the seconds it took.

    The synchronous form tests and benchmarks use (`evergreen up` runs `start_deploy` in the background).
    RuntimeError with the tail of Prefect's output when the deploy fails.
    """
    import os

    t0 = time.monotonic()
    res = subprocess.run(
        [bin_path("prefect"), "--no-prompt", "deploy", "--all", "--prefect-file", str(prefect_file)],
        cwd=cwd,
        env={**os.environ, **env, "PREFECT_CLI_COLORS": "false", "PREFECT_CLI_WRAP_LINES": "false"},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"prefect deploy failed:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}")
    return time.monotonic() - t0
