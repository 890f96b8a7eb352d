"""The loop with auth on (issue 9 item 8, docs/security.md): `evergreen up` starts Prefect with basic auth
and MLflow with its basic-auth app, credentials from the environment only; ingest through the CLI, a
retrain through a deployment run on the process worker, and the audit log names the identity MLflow
verified. Wrong or missing credentials give one `error:` line naming the server, and change nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import stack
from stack.auth import basic_header
from tests.support.builders import ROOT, elec2_weeks, write_batch

pytestmark = [pytest.mark.slow, pytest.mark.integration]

SECRETS = {
    "PREFECT_SERVER_API_AUTH_STRING": "ops:prefect-pw-3141",
    "MLFLOW_AUTH_ADMIN_PASSWORD": "mlflow-admin-pw-2718",
    "MLFLOW_TRACKING_USERNAME": "evergreen-bot",
    "MLFLOW_TRACKING_PASSWORD": "bot-password-1618",
}
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
PASSWORDS = ("prefect-pw-3141", "mlflow-admin-pw-2718", "bot-password-1618")
# the caller's stack settings must not leak into this stack
CLEAN = (
    "PREFECT_API_URL",
    "PREFECT_API_KEY",
    "PREFECT_API_AUTH_STRING",
    "PREFECT_API_DATABASE_CONNECTION_URL",
    "PREFECT_HOME",
    "MLFLOW_TRACKING_URI",
    "EVERGREEN_MLFLOW_TRACKING_URI",
    "EVERGREEN_ACTOR",
    "EVERGREEN_FAULT",
    "EVERGREEN_DATABASE_URL",
    "EVERGREEN_MLFLOW_BACKEND_URI",
    "EVERGREEN_MLFLOW_ARTIFACTS_DESTINATION",
    "EVERGREEN_WORK_POOL",
    "MLFLOW_AUTH_ADMIN_USERNAME",
)


def _run(cmd: list[str], env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _cli(*args: str, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, "-m", "cli.main", *args], env, timeout)


def _ok(res: subprocess.CompletedProcess[str]) -> dict:
    assert res.returncode == 0, f"rc {res.returncode}\n{res.stdout[-3000:]}\n{res.stderr[-4000:]}"
    return json.loads(res.stdout)


def _one_error_line(res: subprocess.CompletedProcess[str], *words: str) -> str:
    assert res.returncode != 0, res.stdout[-2000:]
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, res.stderr[-3000:]
    assert all(w in errors[0] for w in words), errors[0]
    return errors[0]


def _no_secret_in(paths: list[Path]) -> None:
    for path in paths:
        text = path.read_text(errors="replace")
        leaked = [pw for pw in PASSWORDS if pw in text]
        assert not leaked, f"{path} contains a secret"


def _model_versions(env: dict[str, str]) -> list[str]:
    """Every version of elec2, asked as the MLflow admin (none when the model does not exist)."""
    code, body = stack.http_get(
        f"{env['MLFLOW_TRACKING_URI']}/api/2.0/mlflow/model-versions/search?filter=name%3D%27elec2%27",
        timeout=30,
        headers=basic_header(f"admin:{SECRETS['MLFLOW_AUTH_ADMIN_PASSWORD']}"),
    )
    assert code == 200, code
    return sorted(v["version"] for v in json.loads(body or "{}").get("model_versions", []))


def _listening_hosts(pid: int) -> set[str]:
    """The addresses a server process (and its workers) listens on."""
    import psutil

    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return {
        c.laddr.ip for p in procs for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN
    }


def _retrain_runs_settled(env: dict[str, str], timeout: float = 900) -> list[dict]:
    """Wait until the retrain runs the ingest's event started (automation -> deployment -> worker) are
    all final; returns them. Polls the Prefect API with the client's auth string."""
    deadline = time.monotonic() + timeout
    headers = basic_header(env["PREFECT_API_AUTH_STRING"])
    query = {"flows": {"name": {"any_": ["retrain"]}}}
    while True:
        code, runs = stack.http_post_json(f"{env['PREFECT_API_URL']}/flow_runs/filter", query, 30, headers)
        assert code == 200, code
        runs = runs if isinstance(runs, list) else []
        if runs and all(r["state_type"] in FINAL for r in runs):
            return runs
        assert time.monotonic() < deadline, f"retrain runs not final after {timeout:.0f}s: {runs}"
        time.sleep(5)


def test_missing_credentials_fail_before_anything_starts(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in CLEAN and k not in SECRETS}
    env.update(EVERGREEN_HOME=str(tmp_path / "home"), EVERGREEN_AUTH="1")
    res = _cli("up", "--no-deploy", env=env, timeout=300)
    line = _one_error_line(
        res, "EVERGREEN_AUTH=1 needs", "PREFECT_SERVER_API_AUTH_STRING", "MLFLOW_TRACKING_PASSWORD"
    )
    assert res.returncode == 1, line
    assert not (tmp_path / "home" / "stack.json").exists()


def test_loop_with_auth_on(tmp_path):
    home = tmp_path / "home"
    base = {k: v for k, v in os.environ.items() if k not in CLEAN}
    base.update(
        SECRETS,
        EVERGREEN_HOME=str(home),
        EVERGREEN_PREFECT_PORT=str(stack.free_port()),
        EVERGREEN_MLFLOW_PORT=str(stack.free_port()),
        EVERGREEN_WORKER_QUERY_SECONDS="1",
        EVERGREEN_PROJECT_DIR=str(ROOT),
    )
    prefect_yaml = (ROOT / "prefect.yaml").read_text()
    try:
        st = _ok(_cli("up", "--auth", "--json", env=base))
        assert st["auth"]["enabled"] and st["auth"]["mlflow_user"] == "evergreen-bot", st["auth"]
        assert st["auth"]["mlflow_user_action"] == "created"
        assert st["deploy"]["status"] == "deployed", st["deploy"]
        # both servers on loopback, both refuse a request without credentials
        prefect_url, mlflow_url = st["env"]["PREFECT_API_URL"], st["env"]["MLFLOW_TRACKING_URI"]
        assert prefect_url.startswith("http://127.0.0.1:") and mlflow_url.startswith("http://127.0.0.1:")
        assert stack.http_get(f"{prefect_url}/admin/version")[0] == 401
        assert stack.http_get(f"{mlflow_url}/api/2.0/mlflow/experiments/search?max_results=1")[0] == 401
        for name in ("prefect-server", "mlflow-server"):
            assert _listening_hosts(st["services"][name]["pid"]) == {"127.0.0.1"}, name

        client = {**base, **st["env"], "PREFECT_HOME": str(home / "client")}
        client["PREFECT_API_AUTH_STRING"] = SECRETS["PREFECT_SERVER_API_AUTH_STRING"]
        status = _ok(_cli("status", "--json", env=client, timeout=300))
        assert status["healthy"] and status["auth"]["enabled"], status

        weeks = elec2_weeks()
        batch = write_batch(pd.concat(weeks[:10]), tmp_path / "w0-9.csv")
        assert _ok(_cli("ingest", "elec2", batch, "--json", env=client))["status"] == "ingested"

        # The loop: the ingest event fires the shipped volume automation, whose deployment run retrains on
        # the worker `up` started. Credentials reach that run through the worker's environment only.
        runs = _retrain_runs_settled(client)
        assert [r["state_type"] for r in runs] == ["COMPLETED"], runs
        assert (runs[0]["created_by"] or {}).get("type") == "AUTOMATION", runs[0]
        assert not any(pw in json.dumps(runs) for pw in PASSWORDS)  # not in parameters, not anywhere
        assert _model_versions(client) == ["1"]

        history = _ok(_cli("history", "elec2", "--json", env=client, timeout=300))
        promote = [e for e in history if e["action"] == "promote"]
        assert len(promote) == 1 and promote[0]["versions"]["version"] == "1", history
        assert promote[0]["actor"] == "mlflow-user:evergreen-bot", promote[0]
        assert promote[0]["evidence"].get("automation"), promote[0]  # the run's origin stays as evidence
        ingest = [e for e in history if e["action"] == "ingest"]
        assert ingest and all(e["actor"] == "mlflow-user:evergreen-bot" for e in ingest), ingest

        # wrong MLflow password, then no Prefect credentials: one error line each, nothing registered
        wrong = {**client, "MLFLOW_TRACKING_PASSWORD": "not-the-password"}
        _one_error_line(_cli("retrain", "elec2", "--force", "--json", env=wrong), "MLflow server", "401")
        anonymous = {k: v for k, v in client.items() if not k.endswith("AUTH_STRING")}
        _one_error_line(_cli("retrain", "elec2", "--force", "--json", env=anonymous), "Prefect API", "401")
        assert _model_versions(client) == ["1"]
        assert len(_ok(_cli("history", "elec2", "--json", env=client, timeout=300))) == len(history)

        _no_secret_in([home / "stack.json", home / "stack.env", *sorted((home / "logs").glob("*.log"))])
        assert (ROOT / "prefect.yaml").read_text() == prefect_yaml
        _ok(_cli("down", "--json", env=client, timeout=300))
    finally:
        path = home / "stack.json"
        if path.exists():
            for d in json.loads(path.read_text()).get("services", {}).values():
                stack.Service.from_dict(d).stop(timeout=20)
