"""Naming a failure in one line: which server was unreachable, which path, which key.

`describe(exc)` never raises; it looks at the exception and its causes (MLflow wraps requests
errors, Prefect wraps httpx errors) and falls back to `Type: message`.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


_NETWORK_MARKERS = (
    "Max retries exceeded",
    "Connection refused",
    "Failed to establish a new connection",
    "Read timed out",
    "ConnectTimeout",
    "Name or service not known",
)


def _is_network(exc: BaseException) -> bool:
    try:
        import requests

        if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
            return True
    except ImportError:  # pragma: no cover
        pass
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    return any(m in str(exc) for m in _NETWORK_MARKERS)


def _is_httpx_network(exc: BaseException) -> bool:
    try:
        import httpx
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, httpx.TransportError)


def _mlflow_uri() -> str:
    from evergreen.settings import get_settings

    try:
        return get_settings().tracking_uri
    except Exception:  # noqa: BLE001  settings themselves may be the problem
        return os.environ.get("EVERGREEN_MLFLOW_TRACKING_URI") or os.environ.get("MLFLOW_TRACKING_URI", "?")


def _unreachable(exc: BaseException) -> str | None:
    chain = list(_chain(exc))
    if any(_is_httpx_network(e) for e in chain):
        url = os.environ.get("PREFECT_API_URL") or "(PREFECT_API_URL unset)"
        return f"Prefect API {url} is unreachable: is `evergreen up` running? (check PREFECT_API_URL)"
    mlflowish = any(type(e).__module__.startswith(("mlflow", "requests", "urllib3")) for e in chain)
    if mlflowish and any(_is_network(e) for e in chain):
        return (
            f"MLflow server {_mlflow_uri()} is unreachable (gave up after EVERGREEN_MLFLOW_TIMEOUT / "
            "EVERGREEN_MLFLOW_MAX_RETRIES): is it running? (check EVERGREEN_MLFLOW_TRACKING_URI)"
        )
    return None


_DVC_OBJECT = re.compile(r"(^|/)(files/)?md5/[0-9a-f]{2}/[0-9a-f]{30}(\.dir)?$")


def _os_error(exc: OSError) -> str:
    where = exc.filename or ""
    if isinstance(exc, IsADirectoryError):
        return f"{where} is a directory, not a file"
    if isinstance(exc, PermissionError) or exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        home = os.environ.get("EVERGREEN_HOME", ".evergreen")
        return f"cannot write {where}: {exc.strerror} (is EVERGREEN_HOME={home} writable?)"
    if isinstance(exc, FileNotFoundError) and _DVC_OBJECT.search(str(where)):
        # DVC reads a missing object from the remote last: the cache and the remote both lost it.
        return (
            f"the data registry's DVC data objects are missing from the DVC cache and the DVC remote "
            f"({where} not found): restore the remote or `dvc push` from a copy that still has them"
        )
    if isinstance(exc, FileNotFoundError):
        return f"not found: {where}" if where else str(exc)
    return f"{exc.strerror or exc}: {where}".rstrip(": ")


_MLFLOW_REFUSED = re.compile(r"error code (401|403) != 200")


def _http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


def refused(exc: BaseException) -> str | None:
    """A server that answered 401/403: which one, and which credentials to check (docs/security.md)."""
    for e in _chain(exc):
        if _is_httpx_status(e) and _http_status(e) in (401, 403):
            url = os.environ.get("PREFECT_API_URL") or "(PREFECT_API_URL unset)"
            return (
                f"Prefect API {url} refused the request (HTTP {_http_status(e)}): "
                "check PREFECT_API_AUTH_STRING (user:password)"
            )
        match = _MLFLOW_REFUSED.search(str(e))
        code = getattr(e, "error_code", None)
        # MLflow's own wording (also inside the adapters' wrapped messages), or its error code
        if match or (type(e).__module__.startswith("mlflow") and code == "UNAUTHENTICATED"):
            status = match.group(1) if match else "401"
            user = os.environ.get("MLFLOW_TRACKING_USERNAME") or "(MLFLOW_TRACKING_USERNAME unset)"
            what = (
                "refused the credentials: check MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD"
                if status == "401"
                else f"denied user {user} permission: an MLflow admin can grant it"
            )
            return f"MLflow server {_mlflow_uri()} {what} (HTTP {status})"
    return None


def _is_httpx_status(exc: BaseException) -> bool:
    try:
        import httpx
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, httpx.HTTPStatusError)


def describe(exc: BaseException) -> str:
    """One line naming the problem (the caller prefixes `error: `)."""
    reachable = _unreachable(exc) or refused(exc)
    if reachable:
        return reachable
    for e in _chain(exc):
        if isinstance(e, OSError) and not _is_network(e) and (e.filename or e.errno):
            return _os_error(e)
    if isinstance(exc, ValueError | LookupError) or type(exc).__module__.split(".")[0] in (
        "evergreen",
        "adapters",
        "tasks",
        "flows",
        "stack",
    ):
        return str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc} (run with --debug for the traceback)"
