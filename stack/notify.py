"""After the deploy, `evergreen up` makes the notification automations match the specs.

Deployment triggers in prefect.yaml cannot send a notification, so `prefect deploy` does not create
these: `evergreen notify apply` does (deployments/notify.py renders them, adapters/prefect_notify.py
creates them by name). `up` runs it as a subprocess (stack/ never imports prefect) when a spec names a
`notifications.block`, or when the server still has `evergreen-notify` automations a spec no longer
asks for. A failure (e.g. the block does not exist yet) is a warning: the stack itself is up.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from stack.auth import prefect_headers, without_server_secrets
from stack.config import StackConfig, child_env
from stack.net import http_post_json

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


def apply_notifications(
    cfg: StackConfig, api_url: str, env: dict[str, str], progress: Progress
) -> dict[str, Any]:
    """Run `evergreen notify apply` when there is anything to apply or remove; its outcome."""
    models = specs_with_block(cfg.models_dir)
    if not models and not server_has_notify_automations(api_url):
        return {"status": "skipped", "reason": "no spec sets notifications.block"}
    cmd = [sys.executable, "-m", "cli.main", "notify", "apply", "--json"]
    if cfg.models_dir is not None:
        cmd += ["--models-dir", str(cfg.models_dir)]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            cmd,
            cwd=str(cfg.project_root or Path.cwd()),
            env=without_server_secrets(child_env(cfg, env)),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=max(60.0, cfg.start_timeout),
        )
    except subprocess.TimeoutExpired:
        progress("warning: `evergreen notify apply` timed out; notification automations not applied")
        return {"status": "failed", "error": "timeout"}
    seconds = round(time.monotonic() - t0, 2)
    try:
        out = json.loads(proc.stdout or "{}")
    except ValueError:
        out = {}
    if proc.returncode != 0:
        error = out.get("error") or (proc.stderr.strip().splitlines() or ["?"])[-1]
        progress(f"warning: notification automations not applied: {error}")
        return {"status": "failed", "error": error, "seconds": seconds}
    changed = sum(len(out.get(k) or []) for k in ("created", "updated", "deleted"))
    progress(
        f"notifications applied for {', '.join(models) or 'no model'} ({changed} automations) in {seconds:.1f}s"
    )
    return {
        "status": "applied",
        "seconds": seconds,
        **{k: out.get(k) or [] for k in ("created", "updated", "deleted")},
    }
