"""Authentication for the local stack (`EVERGREEN_AUTH=1`, docs/security.md).

The tools' own mechanisms, credentials from the environment only:

- Prefect server basic auth: the server gets ``PREFECT_SERVER_API_AUTH_STRING`` (``user:password``);
  every client (CLI, worker, the flow runs the worker starts, `prefect deploy`) sends
  ``PREFECT_API_AUTH_STRING``. Health probes (``GET /api/health``) stay open.
- MLflow's basic-auth app (``mlflow server --app-name basic-auth``): its admin account is bootstrapped
  from ``MLFLOW_AUTH_ADMIN_USERNAME`` / ``MLFLOW_AUTH_ADMIN_PASSWORD`` (MLflow's own variables) on first
  start; clients authenticate as ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``, a user
  `up` creates with the admin account when it is missing.

Secrets go into process environments only: never into command lines, stack.json, stack.env, logs,
prefect.yaml or Prefect Variables. Pure HTTP (urllib); no prefect import.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from stack.errors import StackError
from stack.net import http_get, http_post_json

PREFECT_SERVER_VAR = "PREFECT_SERVER_API_AUTH_STRING"
PREFECT_CLIENT_VAR = "PREFECT_API_AUTH_STRING"
MLFLOW_ADMIN_USER_VAR = "MLFLOW_AUTH_ADMIN_USERNAME"
MLFLOW_ADMIN_PASSWORD_VAR = "MLFLOW_AUTH_ADMIN_PASSWORD"
MLFLOW_USER_VAR = "MLFLOW_TRACKING_USERNAME"
MLFLOW_PASSWORD_VAR = "MLFLOW_TRACKING_PASSWORD"
FLASK_SECRET_VAR = "MLFLOW_FLASK_SERVER_SECRET_KEY"
AUTH_CONFIG_VAR = "MLFLOW_AUTH_CONFIG_PATH"
AUTH_CONFIG_FILE = "mlflow-auth.ini"
AUTH_DB_FILE = "mlflow-auth.db"
DEFAULT_ADMIN = "admin"
# MLflow's password rule for new users and the admin bootstrap (mlflow.utils.validation._validate_password):
# checked here so `up` names the variable instead of failing inside the server.
MIN_PASSWORD = 12
# Server-side secrets a stack without auth must not inherit from the user's shell (it would turn
# auth on behind `up`'s back, and `up`'s own HTTP calls would then be refused).
SERVER_ONLY_VARS = (PREFECT_SERVER_VAR, MLFLOW_ADMIN_USER_VAR, MLFLOW_ADMIN_PASSWORD_VAR, AUTH_CONFIG_VAR)
SECRET_VARS = (
    PREFECT_SERVER_VAR,
    PREFECT_CLIENT_VAR,
    MLFLOW_ADMIN_PASSWORD_VAR,
    MLFLOW_PASSWORD_VAR,
    FLASK_SECRET_VAR,
    "MLFLOW_TRACKING_TOKEN",
    "PREFECT_API_KEY",
)


class AuthError(StackError):
    """Auth is on but a credential is missing, or a server refused the credentials."""


@dataclass(frozen=True)
class StackAuth:
    """The credentials of an auth-enabled stack (read from the environment, never stored)."""

    prefect_auth_string: str
    mlflow_admin_user: str
    mlflow_admin_password: str | None  # needed to bootstrap the admin and create the tracking user
    mlflow_user: str
    mlflow_password: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StackAuth:
        """Read the credentials; AuthError naming every missing variable."""
        e = os.environ if env is None else env
        prefect = e.get(PREFECT_SERVER_VAR) or e.get(PREFECT_CLIENT_VAR) or ""
        user, password = e.get(MLFLOW_USER_VAR, ""), e.get(MLFLOW_PASSWORD_VAR, "")
        missing = [
            name
            for name, value in (
                (f"{PREFECT_SERVER_VAR} (user:password)", prefect),
                (MLFLOW_USER_VAR, user),
                (MLFLOW_PASSWORD_VAR, password),
            )
            if not value
        ]
        if missing:
            raise AuthError("EVERGREEN_AUTH=1 needs " + ", ".join(missing) + " in the environment")
        if ":" not in prefect:
            raise AuthError(f"{PREFECT_SERVER_VAR} must look like user:password")
        admin = e.get(MLFLOW_ADMIN_USER_VAR) or DEFAULT_ADMIN
        admin_pw = e.get(MLFLOW_ADMIN_PASSWORD_VAR) or (password if user == admin else None)
        return cls(prefect, admin, admin_pw, user, password)

    def client_secrets(self) -> dict[str, str]:
        """What the worker, its flow runs and `prefect deploy` need (environment only)."""
        return {
            PREFECT_CLIENT_VAR: self.prefect_auth_string,
            MLFLOW_USER_VAR: self.mlflow_user,
            MLFLOW_PASSWORD_VAR: self.mlflow_password,
        }

    def prefect_server_env(self) -> dict[str, str]:
        return {PREFECT_SERVER_VAR: self.prefect_auth_string}

    def mlflow_server_env(self, home: Path) -> dict[str, str]:
        """MLflow's own variables: the auth config file, the admin bootstrap, the CSRF key."""
        env = {
            AUTH_CONFIG_VAR: str(write_mlflow_auth_config(home)),
            MLFLOW_ADMIN_USER_VAR: self.mlflow_admin_user,
            # a per-start key unless the operator pins one (it only signs CSRF tokens)
            FLASK_SECRET_VAR: os.environ.get(FLASK_SECRET_VAR) or secrets.token_hex(32),
        }
        if self.mlflow_admin_password:
            env[MLFLOW_ADMIN_PASSWORD_VAR] = self.mlflow_admin_password
        return env

    def summary(self) -> dict[str, object]:
        """For stack.json and `status`: what is on and who, no secret."""
        return {"enabled": True, "prefect": True, "mlflow": True, "mlflow_user": self.mlflow_user}


def write_mlflow_auth_config(home: Path) -> Path:
    """``<home>/mlflow-auth.ini``: MLflow's auth config with its user database under home.

    No password in it: the admin bootstrap comes from MLFLOW_AUTH_ADMIN_* in the server's environment.
    New resources are readable by every user and writable by their creator (MLflow's default).
    """
    path = home / AUTH_CONFIG_FILE
    path.write_text(
        "# written by `evergreen up` (EVERGREEN_AUTH=1); see docs/security.md\n"
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{home / AUTH_DB_FILE}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    return path


def without_server_secrets(env: Mapping[str, str]) -> dict[str, str]:
    """`env` minus the server-side auth variables (for a stack started without EVERGREEN_AUTH)."""
    return {k: v for k, v in env.items() if k not in SERVER_ONLY_VARS}


def basic_header(user_password: str) -> dict[str, str]:
    token = base64.b64encode(user_password.encode("utf-8")).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def prefect_headers(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The Authorization header Prefect clients send, from PREFECT_API_AUTH_STRING (or the server's)."""
    e = os.environ if env is None else env
    value = e.get(PREFECT_CLIENT_VAR) or e.get(PREFECT_SERVER_VAR)
    return basic_header(value) if value else {}


def _get(url: str, headers: dict[str, str]) -> int:
    return http_get(url, timeout=10.0, headers=headers)[0]


def _get_json(url: str, headers: dict[str, str]) -> tuple[int, object]:
    status, text = http_get(url, timeout=10.0, headers=headers)
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, None


def check_prefect(api_url: str, auth_string: str) -> None:
    """AuthError unless the Prefect server accepts `auth_string` and refuses a request without it."""
    status = _get(f"{api_url}/admin/version", basic_header(auth_string))
    if status in (401, 403):
        raise AuthError(
            f"Prefect server {api_url} refused the credentials (HTTP {status}): it was started with "
            f"another {PREFECT_SERVER_VAR}; use that one or `evergreen down` and up again"
        )
    if status != 200:
        raise AuthError(f"Prefect server {api_url} did not answer an authenticated request (HTTP {status})")
    anonymous = _get(f"{api_url}/admin/version", {})
    if anonymous == 200:
        raise AuthError(
            f"Prefect server {api_url} runs without auth (EVERGREEN_AUTH=1): `evergreen down`, then up again"
        )


def mlflow_current_user(url: str, user: str, password: str) -> tuple[int, str | None]:
    """(HTTP status, username) of `GET /api/2.0/mlflow/users/current` with these credentials.

    404 means the server has no auth app; 401 means it refused them.
    """
    status, body = _get_json(f"{url}/api/2.0/mlflow/users/current", basic_header(f"{user}:{password}"))
    name = body.get("user", {}).get("username") if isinstance(body, dict) else None
    return status, name if isinstance(name, str) else None


def ensure_mlflow_user(url: str, auth: StackAuth) -> str:
    """Make sure the tracking user exists and its password works; returns "exists" or "created"."""
    status, name = mlflow_current_user(url, auth.mlflow_user, auth.mlflow_password)
    if status == 200 and name == auth.mlflow_user:
        return "exists"
    if status == 404:
        raise AuthError(
            f"MLflow server {url} runs without auth (EVERGREEN_AUTH=1): `evergreen down`, then up again"
        )
    if status not in (401, 403):
        raise AuthError(f"MLflow server {url} did not answer /users/current (HTTP {status})")
    if not auth.mlflow_admin_password:
        raise AuthError(
            f"MLflow server {url} refused {MLFLOW_USER_VAR}={auth.mlflow_user} (HTTP {status}); "
            f"set {MLFLOW_ADMIN_PASSWORD_VAR} so `evergreen up` can create that user, or fix the password"
        )
    admin = basic_header(f"{auth.mlflow_admin_user}:{auth.mlflow_admin_password}")
    q = urllib.parse.urlencode({"username": auth.mlflow_user})
    exists = _get(f"{url}/api/2.0/mlflow/users/get?{q}", admin)
    if exists in (401, 403):
        raise AuthError(
            f"MLflow server {url} refused the admin credentials {MLFLOW_ADMIN_USER_VAR}="
            f"{auth.mlflow_admin_user} (HTTP {exists}): the admin password is the one of its first start"
        )
    if exists == 200:
        raise AuthError(
            f"MLflow server {url} refused {MLFLOW_USER_VAR}={auth.mlflow_user} (HTTP {status}): wrong "
            f"{MLFLOW_PASSWORD_VAR} (the user exists; an admin can reset it)"
        )
    if len(auth.mlflow_password) < MIN_PASSWORD:
        raise AuthError(f"{MLFLOW_PASSWORD_VAR} must have at least {MIN_PASSWORD} characters (MLflow's rule)")
    created, _ = http_post_json(
        f"{url}/api/2.0/mlflow/users/create",
        {"username": auth.mlflow_user, "password": auth.mlflow_password},
        timeout=10.0,
        headers=admin,
    )
    if created not in (200, 201):
        raise AuthError(f"MLflow server {url}: creating user {auth.mlflow_user!r} failed (HTTP {created})")
    return "created"


def redact_env(env: Mapping[str, object]) -> dict[str, object]:
    """A copy of `env` with every secret-bearing value replaced by ``***`` (for `status` output)."""
    return {k: "***" if k in SECRET_VARS or "PASSWORD" in k or "SECRET" in k else v for k, v in env.items()}
