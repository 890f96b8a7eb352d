"""Loopback ports and tiny HTTP helpers (urllib only: no client library needed to probe a server)."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request

from stack.errors import PortInUseError

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A currently free TCP port on `host` (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_in_use(port: int, host: str = HOST) -> bool:
    """True when something listens on host:port, or the port cannot be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        if s.connect_ex((host, port)) == 0:
            return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # like the servers themselves: TIME_WAIT leftovers do not block, a listener does
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def ensure_port_free(port: int, setting: str | None = None, service: str | None = None) -> None:
    """Raise `PortInUseError` (naming the setting that moves it) when `port` is taken."""
    if port_in_use(port):
        raise PortInUseError(port, setting=setting, service=service, host=HOST)


def wait_port_free(port: int, timeout: float = 10.0) -> bool:
    """Poll until nothing holds `port`; False when it is still bound after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not port_in_use(port):
            return True
        time.sleep(0.2)
    return not port_in_use(port)


def http_get(url: str, timeout: float = 3.0, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """(status, body) for a GET; status 0 when the connection fails."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (loopback URLs)
            return resp.status, resp.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except (urllib.error.URLError, OSError, TimeoutError):
        return 0, ""


def http_post_json(
    url: str, payload: object, timeout: float = 5.0, headers: dict[str, str] | None = None
) -> tuple[int, object]:
    """(status, decoded JSON body or None) for a JSON POST; status 0 when the connection fails."""
    data = json.dumps(payload).encode()
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    req = urllib.request.Request(url, data=data, headers=hdrs, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            body = resp.read().decode("utf-8", errors="replace")
            return resp.status, json.loads(body) if body else None
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (urllib.error.URLError, OSError, TimeoutError, ValueError):
        return 0, None


def redact(url: str) -> str:
    """Hide a password in a URL (user:pw@host -> user:***@host)."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            creds = creds.split(":", 1)[0] + ":***"
        return f"{scheme}://{creds}@{host}"
    return url
