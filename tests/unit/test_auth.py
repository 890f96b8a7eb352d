"""Auth for the local stack and the audit actor (issue 9 item 8, docs/security.md): pure parts, no servers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest

from adapters import mlflow_identity
from cli.errors import describe, refused
from evergreen.audit import RunOrigin, resolve_actor
from stack import StackConfig
from stack.auth import (
    AuthError,
    StackAuth,
    prefect_headers,
    redact_env,
    without_server_secrets,
    write_mlflow_auth_config,
)
from stack.services import Service
from stack.up import _check_reused_auth, _Run, _stack_auth

FULL = {
    "PREFECT_SERVER_API_AUTH_STRING": "ops:prefect-secret",
    "MLFLOW_TRACKING_USERNAME": "bot",
    "MLFLOW_TRACKING_PASSWORD": "bot-password-123",
    "MLFLOW_AUTH_ADMIN_PASSWORD": "admin-password-123",
}


def test_missing_credentials_are_all_named():
    with pytest.raises(AuthError) as err:
        StackAuth.from_env({})
    msg = str(err.value)
    for name in ("PREFECT_SERVER_API_AUTH_STRING", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        assert name in msg


def test_prefect_auth_string_must_be_user_colon_password():
    with pytest.raises(AuthError, match="user:password"):
        StackAuth.from_env({**FULL, "PREFECT_SERVER_API_AUTH_STRING": "justapassword"})


def test_client_auth_string_is_accepted_and_admin_defaults():
    env = {**FULL, "PREFECT_API_AUTH_STRING": "ops:x"}
    del env["PREFECT_SERVER_API_AUTH_STRING"]
    auth = StackAuth.from_env(env)
    assert auth.prefect_auth_string == "ops:x" and auth.mlflow_admin_user == "admin"
    assert auth.client_secrets() == {
        "PREFECT_API_AUTH_STRING": "ops:x",
        "MLFLOW_TRACKING_USERNAME": "bot",
        "MLFLOW_TRACKING_PASSWORD": "bot-password-123",
    }


def test_tracking_user_that_is_the_admin_bootstraps_with_its_own_password():
    env = {**FULL, "MLFLOW_TRACKING_USERNAME": "admin"}
    del env["MLFLOW_AUTH_ADMIN_PASSWORD"]
    assert StackAuth.from_env(env).mlflow_admin_password == "bot-password-123"


def test_mlflow_server_env_keeps_passwords_out_of_the_config_file(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_FLASK_SERVER_SECRET_KEY", raising=False)
    env = StackAuth.from_env(FULL).mlflow_server_env(tmp_path)
    text = Path(env["MLFLOW_AUTH_CONFIG_PATH"]).read_text()
    assert "admin-password-123" not in text and "bot-password-123" not in text
    assert f"sqlite:///{tmp_path / 'mlflow-auth.db'}" in text
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"] == "admin-password-123"
    assert len(env["MLFLOW_FLASK_SERVER_SECRET_KEY"]) >= 32


def test_write_mlflow_auth_config_is_what_mlflow_reads(tmp_path, monkeypatch):
    from mlflow.server.auth.config import read_auth_config

    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(write_mlflow_auth_config(tmp_path)))
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD", raising=False)
    cfg = read_auth_config()
    assert cfg.default_permission == "READ" and cfg.database_uri.endswith("mlflow-auth.db")
    assert cfg.admin_password is None  # comes from the server's environment only


def test_server_secrets_are_stripped_and_status_env_redacted():
    env = {**FULL, "PATH": "/bin", "MLFLOW_AUTH_CONFIG_PATH": "/x"}
    stripped = without_server_secrets(env)
    assert "PREFECT_SERVER_API_AUTH_STRING" not in stripped and "MLFLOW_AUTH_ADMIN_PASSWORD" not in stripped
    assert stripped["MLFLOW_TRACKING_USERNAME"] == "bot" and stripped["PATH"] == "/bin"
    shown = redact_env(env)
    assert shown["MLFLOW_TRACKING_PASSWORD"] == "***" and shown["PREFECT_SERVER_API_AUTH_STRING"] == "***"
    assert shown["MLFLOW_TRACKING_USERNAME"] == "bot"


def test_prefect_headers_are_basic_auth():
    assert prefect_headers({}) == {}
    assert prefect_headers({"PREFECT_API_AUTH_STRING": "a:b"}) == {"Authorization": "Basic YTpi"}


def _cfg(tmp_path: Path, auth: bool = True) -> StackConfig:
    return StackConfig(home=tmp_path, auth=auth)


def test_first_start_needs_admin_password_of_mlflows_length(tmp_path, monkeypatch):
    for k, v in FULL.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_USERNAME", raising=False)
    assert _stack_auth(_cfg(tmp_path, auth=False)) is None
    assert _stack_auth(_cfg(tmp_path)) is not None
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", "short")
    with pytest.raises(AuthError, match="MLFLOW_AUTH_ADMIN_PASSWORD must have at least 12"):
        _stack_auth(_cfg(tmp_path))
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD")
    with pytest.raises(AuthError, match="first start"):
        _stack_auth(_cfg(tmp_path))
    (tmp_path / "mlflow-auth.db").touch()  # the admin exists: its bootstrap password is not needed
    assert _stack_auth(_cfg(tmp_path)) is not None


def test_reused_server_must_match_the_auth_mode(tmp_path):
    svc = Service(name="mlflow-server", pid=1, log_path="x", cmd=[], extra={"auth": False})
    run = _Run(_cfg(tmp_path), lambda _: None, services={"mlflow-server": svc})
    run.auth = StackAuth.from_env(FULL)
    with pytest.raises(AuthError, match="runs without auth but EVERGREEN_AUTH=1"):
        _check_reused_auth(run)
    run.auth = None
    _check_reused_auth(run)


def test_verified_identity_wins_over_declared_names():
    origin = RunOrigin(deployment="elec2", flow="retrain")
    env = {"EVERGREEN_ACTOR": "someone-else", "MLFLOW_TRACKING_USERNAME": "claimed"}
    assert resolve_actor(env, origin, authenticated="bot") == "mlflow-user:bot"
    assert resolve_actor(env, origin, authenticated=None) == "someone-else"
    assert resolve_actor({}, origin, authenticated=" ") == "deployment:retrain/elec2"


def test_mlflow_401_and_403_name_the_server_and_the_credentials(monkeypatch):
    from mlflow.exceptions import MlflowException

    monkeypatch.setenv("EVERGREEN_MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bot")
    body = "API request to endpoint /api/2.0/mlflow/runs/create failed with error code {} != 200."
    line = describe(MlflowException(body.format(401)))
    assert line.startswith("MLflow server http://127.0.0.1:5999 refused the credentials") and "401" in line
    line = describe(RuntimeError("wrapped").with_traceback(None))
    assert "refused" not in line
    assert "denied user bot permission" in (refused(MlflowException(body.format(403))) or "")


def test_prefect_401_names_the_prefect_api(monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4999/api")
    req = httpx.Request("GET", "http://127.0.0.1:4999/api/flows")
    exc = httpx.HTTPStatusError("401", request=req, response=httpx.Response(401, request=req))
    assert describe(exc) == (
        "Prefect API http://127.0.0.1:4999/api refused the request (HTTP 401): "
        "check PREFECT_API_AUTH_STRING (user:password)"
    )


class _CurrentUser(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        ok = self.path == mlflow_identity.CURRENT_USER_PATH and self.headers.get("Authorization")
        self.send_response(200 if ok else 404)
        self.end_headers()
        if ok:
            self.wfile.write(json.dumps({"user": {"username": "bot", "is_admin": False}}).encode())

    def log_message(self, *args: object) -> None:
        return None


def test_authenticated_user_asks_the_server(monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), _CurrentUser)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
        assert mlflow_identity.authenticated_user(url) is None  # no credentials: nothing to verify
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bot")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw")
        assert mlflow_identity.authenticated_user(url) == "bot"
        assert mlflow_identity.authenticated_user("sqlite:///x.db") is None
    finally:
        server.shutdown()
