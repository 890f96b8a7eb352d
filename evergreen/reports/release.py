"""The demo report's release-path section: shadow decisions and the notifications a webhook received.

Pure: rows in, an HTML fragment out (appended to the page `evergreen.reports.demo.build_report` builds).

- ``shadow``: one dict per shadow decision: ``model``, ``version``, ``decision`` (promoted / retired),
  ``champion_version``, ``summary`` (the events ``evergreen.shadow.promoted`` / ``.retired``).
- ``notifications``: one dict per delivered message: ``received_at``, ``subject``, ``event``, ``model``,
  ``version`` (demo/release.py reads them off the message footer).
- ``info``: where they went: ``url``, ``block``, ``jsonl``, ``automations``, ``expected``, ``delivered``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from evergreen.reports.demo import _table

SHADOW_HEADERS = ["model", "shadow version", "decision", "champion then", "why"]
NOTIFY_HEADERS = ["received (UTC)", "model", "event", "version", "subject"]


def shadow_text(decisions: Sequence[Mapping[str, Any]]) -> str:
    """`shadow v4 promoted, shadow v6 retired`: a week's shadow decisions for the summary table."""
    return ", ".join(f"shadow v{d.get('version')} {d.get('decision')}" for d in decisions)


def release_section(
    shadow: Sequence[Mapping[str, Any]],
    notifications: Sequence[Mapping[str, Any]],
    info: Mapping[str, Any] | None = None,
) -> str:
    """The report's "Release path" section (empty string when there is nothing to show)."""
    info = info or {}
    if not shadow and not notifications and not info:
        return ""
    srows = [
        [d.get("model"), d.get("version"), d.get("decision"), d.get("champion_version"), d.get("summary")]
        for d in shadow
    ]
    nrows = [
        [
            str(m.get("received_at", ""))[:19],
            m.get("model"),
            m.get("event"),
            m.get("version"),
            m.get("subject"),
        ]
        for m in notifications
    ]
    where = (
        f"<p>{len(notifications)} notifications delivered of {info.get('expected', '-')} notified events, "
        f"by the Prefect block <code>{html.escape(str(info.get('block', '-')))}</code> to the local receiver "
        f"{html.escape(str(info.get('url', '-')))} (every message: {html.escape(str(info.get('jsonl', '-')))}; "
        f"{len(info.get('automations') or [])} automations).</p>"
    )
    no_shadow = "<p>No shadow decision in the replayed weeks.</p>"
    return (
        '<section class="release" id="release-path"><h2>Release path</h2>'
        f"<h3>Shadow decisions</h3>{_table(SHADOW_HEADERS, srows, 'shadow') if srows else no_shadow}"
        f"<h3>Notifications</h3>{where}{_table(NOTIFY_HEADERS, nrows, 'notifications') if nrows else ''}"
        "</section>"
    )
