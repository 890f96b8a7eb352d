"""Who the MLflow server says we are: `GET /api/2.0/mlflow/users/current` (MLflow's basic-auth app).

The audit actor is the identity the server authenticated (docs/security.md), not a name the client
claims. A server without the auth app answers 404 there, and then there is no authenticated identity.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os

logger = logging.getLogger(__name__)

CURRENT_USER_PATH = "/api/2.0/mlflow/users/current"


def authenticated_user(tracking_uri: str) -> str | None:
    """The username the server at `tracking_uri` authenticated from MLFLOW_TRACKING_USERNAME/PASSWORD,
    or None (no credentials, not an HTTP server, no auth app, or the server could not be asked)."""
    user = os.environ.get("MLFLOW_TRACKING_USERNAME", "")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD", "")
    if not (user and password and tracking_uri.startswith(("http://", "https://"))):
        return None
    # cache per process and credentials: one request per CLI command or flow run, not per entry
    digest = hashlib.sha256(f"{user}:{password}".encode()).hexdigest()
    return _ask(tracking_uri.rstrip("/"), user, digest)


@functools.lru_cache(maxsize=8)
def _ask(base: str, user: str, _digest: str) -> str | None:
    import requests

    password = os.environ.get("MLFLOW_TRACKING_PASSWORD", "")
    timeout = float(os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", "30"))
    try:
        resp = requests.get(f"{base}{CURRENT_USER_PATH}", auth=(user, password), timeout=timeout)
    except requests.RequestException as exc:
        logger.warning("audit: could not ask %s who we are (%s)", base, exc)
        return None
    if resp.status_code != 200:
        return None  # 404: no auth app; 401/403: the write that follows fails and says so
    try:
        name = resp.json().get("user", {}).get("username")
    except ValueError:
        return None
    return name if isinstance(name, str) and name else None
