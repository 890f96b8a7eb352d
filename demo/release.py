"""The release path in the demo: notifications to a local webhook receiver, and shadow decisions.

- The demo's spec copies get ``notifications: {block: evergreen-demo, on: DemoOptions.notify_on}`` for
  every replayed model and, for ``DemoOptions.shadow_model`` (elec2), ``promotion: {mode: shadow,
  shadow_batches: DemoOptions.shadow_batches}`` (`spec_overrides`).
- `DemoNotifications` starts a stdlib webhook receiver (demo/receiver.py) before the stack, creates the
  ``custom-webhook/evergreen-demo`` block pointing at it once Prefect is up, and applies the rendered
  notification automations (the same code as ``evergreen notify setup``). Every delivered message is
  appended to ``<demo home>/notifications.jsonl``; each replayed week lists the ones that arrived
  while it ran.
- Shadow decisions (``evergreen.shadow.promoted`` / ``.retired``) are read from the week's events by
  demo/settle.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from demo.options import DemoOptions, Log, noop
from demo.receiver import WebhookReceiver
from deployments.notify import NOTIFY_EVENTS

BLOCK = "evergreen-demo"
JSONL = "notifications.jsonl"
_FIELD = re.compile(r"^(event|model|version|event_id): ?(.*)$", re.MULTILINE)


def spec_overrides(opts: DemoOptions) -> dict[str, dict[str, Any]]:
    """{model: top-level spec keys the demo copy replaces} for the replayed models."""
    models = [m for m in (opts.model, opts.side_model) if m]
    out: dict[str, dict[str, Any]] = {m: {} for m in models}
    if opts.notify:
        for m in models:
            out[m]["notifications"] = {"block": BLOCK, "on": list(opts.notify_on)}
    if opts.shadow_model in out:
        out[str(opts.shadow_model)]["promotion"] = {"mode": "shadow", "shadow_batches": opts.shadow_batches}
    return out


def message_row(message: dict[str, Any]) -> dict[str, Any]:
    """A delivered message as a report row: when, subject, and the footer's event/model/version."""
    fields = dict(_FIELD.findall(str(message.get("body") or "")))
    return {
        "received_at": message.get("received_at", ""),
        "subject": message.get("subject", ""),
        "event": fields.get("event", ""),
        "model": fields.get("model", ""),
        "version": fields.get("version", ""),
        "event_id": fields.get("event_id", ""),
    }


def notified_events(opts: DemoOptions) -> set[str]:
    """The event names the demo's notification automations send."""
    return {e.value for kind in opts.notify_on for e in NOTIFY_EVENTS[kind]}


class DemoNotifications:
    """The receiver, the block and the automations; `drain()` per week, `finish()` at the end."""

    def __init__(self, demo_home: Path, log: Log = noop) -> None:
        self.receiver = WebhookReceiver(demo_home / JSONL)
        self.log = log
        self.taken: set[int] = set()  # indices of messages already listed under a week
        self.info: dict[str, Any] = {"jsonl": str(demo_home / JSONL)}

    def start(self) -> str:
        url = self.receiver.start()
        self.info["url"] = url
        self.log(f"webhook receiver listening on {url} (messages: {self.info['jsonl']})")
        return url

    def setup(self, specs: Sequence[Any]) -> None:
        """Block + automations, on the stack this process points at (PREFECT_API_URL)."""
        import prefect.context

        from adapters.prefect_notify import apply_notifications, save_webhook_block

        prefect.context.refresh_global_settings_context()
        self.info["block"] = save_webhook_block(self.receiver.url, BLOCK)
        applied = apply_notifications(specs)
        self.info["automations"] = applied["created"] + applied["updated"]
        self.log(f"notification block {self.info['block']}: {len(self.info['automations'])} automations")

    def drain(self, model: str) -> list[dict[str, Any]]:
        """`model`'s messages delivered since its last drain, as report rows."""
        rows = [(i, message_row(m)) for i, m in enumerate(self.receiver.messages) if i not in self.taken]
        mine = [(i, r) for i, r in rows if r["model"] == model]
        self.taken.update(i for i, _ in mine)
        return [r for _, r in mine]

    def finish(self, expected: int, timeout: float) -> list[dict[str, Any]]:
        """Wait (bounded) until `expected` messages arrived in total; every message as a report row."""
        t0 = time.monotonic()
        got = self.receiver.wait_for(lambda ms: len(ms) >= expected, timeout)
        self.info.update({"expected": expected, "delivered": len(got)})
        self.log(
            f"notifications: {len(got)} delivered of {expected} notified events "
            f"(waited {time.monotonic() - t0:.1f}s)"
        )
        return [message_row(m) for m in got]

    def stop(self) -> None:
        self.receiver.stop()
