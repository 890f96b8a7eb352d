"""A local webhook receiver: a stdlib HTTP server on 127.0.0.1 that records every JSON POST.

The demo points its notification block at it, so a Prefect automation's `send-notification` has
somewhere real to deliver to; the notification integration test uses it the same way. Each message is
kept in memory and appended to a JSON-lines file (one object per line: `received_at`, `path` and the
posted JSON, i.e. the webhook block's `subject`, `body` and `block`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Message = dict[str, Any]


class WebhookReceiver:
    """Start with `start()` (returns the URL to post to), stop with `stop()`; or use it as a context."""

    def __init__(self, jsonl: Path | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.jsonl = jsonl
        self._lock = threading.Lock()
        self._messages: list[Message] = []
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/notify"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"raw": raw.decode("utf-8", "replace")}
                receiver._record({"path": self.path, **(body if isinstance(body, dict) else {"json": body})})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (quiet: no stderr lines)
                return None

        return Handler

    def _record(self, message: Message) -> None:
        message = {"received_at": datetime.now(UTC).isoformat(), **message}
        with self._lock:
            self._messages.append(message)
            if self.jsonl is not None:
                self.jsonl.parent.mkdir(parents=True, exist_ok=True)
                with self.jsonl.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(message) + "\n")

    @property
    def messages(self) -> list[Message]:
        with self._lock:
            return list(self._messages)

    def wait_for(self, done: Callable[[list[Message]], bool], timeout: float) -> list[Message]:
        """Poll until `done(messages)` or `timeout` seconds passed; the messages either way."""
        deadline = time.monotonic() + timeout
        while not done(self.messages) and time.monotonic() < deadline:
            time.sleep(0.25)
        return self.messages

    def start(self) -> str:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhook-receiver", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> WebhookReceiver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
