"""While the deploy runs, `evergreen up` makes the notification automations match the specs.

Deployment triggers in prefect.yaml cannot send a notification, so `prefect deploy` does not create
these: `evergreen notify apply` does (deployments/notify.py renders them, adapters/prefect_notify.py
creates them by name). `up` runs it as a subprocess (stack/ never imports prefect) when a spec names a
`notifications.block`, or when the server still has `evergreen-notify` automations a spec no longer
asks for. A failure (e.g. the block does not exist yet) is a warning: the stack itself is up.
The automations trigger on model events and call a block; none names a deployment, so `up` starts the
apply once Prefect answers and lets it run beside the deploy (`start_notifications`, then
`finish_notifications`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stack.auth import prefect_headers, without_server_secrets
from stack.config import StackConfig, child_env
from stack.net import http_post_json
from stack.processes import stop_pid

Progress = Callable[[str], None]
TAG = "evergreen-notify"  # deployments.notify.TAG (kept literal: no spec parsing needed here)


def specs_with_block(models_dir: Path | None) -> list[str]:
    """Models whose spec file names a notification block (a plain YAML read; `apply` validates)."""
    if models_dir is None or not Path(models_dir).is_dir():
        return []
    out = []
    for path in sorted(Path(models_dir).glob("*.yaml")):
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        notifications = doc.get("notifications") if isinstance(doc, dict) else None
        if isinstance(notifications, dict) and notifications.get("block"):
            out.append(path.stem)
    return out


def server_has_notify_automations(api_url: str) -> bool:
    """True when the server holds automations tagged evergreen-notify (a spec may have dropped its block)."""
    status, body = http_post_json(f"{api_url}/automations/filter", {"limit": 200}, headers=prefect_headers())
    autos = body if status == 200 and isinstance(body, list) else []
    return any(TAG in (a.get("tags") or []) for a in autos if isinstance(a, dict))


@dataclass
class NotifyRun:
    """`evergreen notify apply` started by `start_notifications` (None proc: nothing to do)."""

    proc: subprocess.Popen | None
    models: list[str]
    timeout: float
    t0: float = field(default_factory=time.monotonic)
    out: Path | None = None  # its stdout (the JSON) and stderr, under the logs directory
    err: Path | None = None
    skipped: dict[str, Any] | None = None


def start_notifications(cfg: StackConfig, api_url: str, env: dict[str, str]) -> NotifyRun:
    """Start `evergreen notify apply` when there is anything to apply or remove; `finish_notifications`."""
    models = specs_with_block(cfg.models_dir)
    timeout = max(60.0, cfg.start_timeout)
    if not models and not server_has_notify_automations(api_url):
        return NotifyRun(
            None, models, timeout, skipped={"status": "skipped", "reason": "no spec sets notifications.block"}
        )
    cmd = [sys.executable, "-m", "cli.main", "notify", "apply", "--json"]
    if cfg.models_dir is not None:
        cmd += ["--models-dir", str(cfg.models_dir)]
    cfg.logs_dir.mkdir(parents=True, exist_ok=True)
    out, err = cfg.logs_dir / "notify-apply.json", cfg.logs_dir / "notify-apply.log"
    with open(out, "wb") as out_fh, open(err, "wb") as err_fh:
        proc = subprocess.Popen(
            cmd,
            cwd=str(cfg.project_root or Path.cwd()),
            env=without_server_secrets(child_env(cfg, env)),
            stdin=subprocess.DEVNULL,
            stdout=out_fh,
            stderr=err_fh,
            start_new_session=True,
        )
    return NotifyRun(proc, models, timeout, out=out, err=err)


def stop_notifications(run: NotifyRun | None) -> None:
    """Stop a started apply that `up` no longer waits for (it failed)."""
    if run is not None and run.proc is not None and run.proc.poll() is None:
        stop_pid(run.proc.pid, proc=run.proc)


def finish_notifications(run: NotifyRun, progress: Progress) -> dict[str, Any]:
    """Wait for `start_notifications`' apply; its outcome (a failure is a warning)."""
    if run.proc is None:
        return run.skipped or {"status": "skipped"}
    try:
        run.proc.wait(timeout=max(1.0, run.timeout - (time.monotonic() - run.t0)))
    except subprocess.TimeoutExpired:
        stop_pid(run.proc.pid, proc=run.proc)
        progress("warning: `evergreen notify apply` timed out; notification automations not applied")
        return {"status": "failed", "error": "timeout"}
    seconds = round(time.monotonic() - run.t0, 2)
    stdout, stderr = (_read(f) for f in (run.out, run.err))
    try:
        out = json.loads(stdout or "{}")
    except ValueError:
        out = {}
    if run.proc.returncode != 0:
        error = out.get("error") or (stderr.strip().splitlines() or ["?"])[-1]
        progress(f"warning: notification automations not applied: {error}")
        return {"status": "failed", "error": error, "seconds": seconds}
    changed = sum(len(out.get(k) or []) for k in ("created", "updated", "deleted"))
    progress(
        f"notifications applied for {', '.join(run.models) or 'no model'} ({changed} automations) in {seconds:.1f}s"
    )
    return {
        "status": "applied",
        "seconds": seconds,
        **{k: out.get(k) or [] for k in ("created", "updated", "deleted")},
    }


def _read(path: Path | None) -> str:
    try:
        return path.read_text(errors="replace") if path is not None else ""
    except OSError:
        return ""


def apply_notifications(
    cfg: StackConfig, api_url: str, env: dict[str, str], progress: Progress
) -> dict[str, Any]:
    """Run `evergreen notify apply` when there is anything to apply or remove; its outcome."""
    return finish_notifications(start_notifications(cfg, api_url, env), progress)
