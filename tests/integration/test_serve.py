"""`evergreen serve` on real parts: MLflow's scoring server answers over HTTP exactly what the registered
model's pyfunc predicts in-process, and it follows the `champion` alias through a promotion and a rollback.

Versions come from the real retrain and rollback flows (real DVC registry, GX, MLflow server, Prefect).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests

import stack
from tests.faults.conftest import fresh_model  # noqa: F401  (fixture: a private model on the session servers)
from tests.support.builders import ROOT, elec2_weeks, write_batch

pytestmark = [pytest.mark.slow, pytest.mark.integration]

SERVE_TIMEOUT = 300.0


@pytest.fixture
def model(fresh_model) -> str:  # noqa: F811
    return fresh_model("serve")


def _announcements(proc: subprocess.Popen[str], n: int) -> list[dict[str, Any]]:
    """Read the first `n` JSON lines `evergreen serve --json` prints (one per start or restart)."""
    assert proc.stdout is not None
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + SERVE_TIMEOUT
    while len(found) < n:
        assert time.monotonic() < deadline, f"serve announced {found}, expected {n} starts"
        line = proc.stdout.readline()
        assert line, f"evergreen serve exited ({proc.poll()}): {proc.stderr.read() if proc.stderr else ''}"
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:  # an error document (multi-line), not an announcement
                proc.terminate()
                rest, err = proc.communicate(timeout=60)
                pytest.fail(f"evergreen serve failed: {line}{rest}\n{err[-4000:]}")
    return found


def _score_http(url: str, rows: pd.DataFrame) -> Any:
    body = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False, date_format="iso"))}
    resp = requests.post(url, json=body, timeout=60)
    assert resp.status_code == 200, resp.text[:2000]
    return resp.json()["predictions"]


def _as_array(predictions: Any) -> np.ndarray:
    if predictions and isinstance(predictions[0], dict):
        return pd.DataFrame(predictions).to_numpy(dtype=float)
    return np.asarray(predictions, dtype=float)


def _expected(model: str, version: str, rows: pd.DataFrame) -> np.ndarray:
    out = mlflow.pyfunc.load_model(f"models:/{model}/{version}").predict(rows)
    return np.asarray(out.to_numpy() if isinstance(out, pd.DataFrame) else out, dtype=float)


def test_serve_answers_like_pyfunc_and_follows_promotion_and_rollback(model, tmp_path):
    from flows.ingest import ingest
    from flows.retrain import retrain
    from flows.rollback import rollback

    weeks = elec2_weeks()
    assert (
        ingest(model=model, path=write_batch(pd.concat(weeks[:10]), tmp_path / "w0-9.csv"))["status"]
        == "ingested"
    )
    assert retrain(model=model, reason="manual")["status"] == "promoted"

    port = stack.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", model, "--port", str(port), "--poll", "1", "--json"],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = _announcements(proc, 1)[0]
        assert first["version"] == "1" and first["url"] == f"http://127.0.0.1:{port}/invocations"
        rows = weeks[10].drop(columns=["class"]).head(50)
        served = _as_array(_score_http(first["url"], rows))
        np.testing.assert_allclose(served, _expected(model, "1", rows), rtol=1e-9, atol=1e-12)

        # A promotion moves the alias; the server restarts on the new version by itself.
        ingest(model=model, path=write_batch(weeks[10], tmp_path / "w10.csv"))
        second = retrain(model=model, reason="manual", force=True, overrides={"training.refit": False})
        assert second["status"] == "promoted", second
        moved = _announcements(proc, 1)[0]
        assert moved["version"] == second["version"] == "2"
        np.testing.assert_allclose(_as_array(_score_http(moved["url"], rows)), _expected(model, "2", rows))

        # A rollback is an alias move too.
        assert rollback(model=model, reason="serving test")["to_version"] == "1"
        back = _announcements(proc, 1)[0]
        assert back["version"] == "1"
        np.testing.assert_allclose(_as_array(_score_http(back["url"], rows)), served, rtol=1e-9, atol=1e-12)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert not stack.port_in_use(port), "evergreen serve left its scoring server running"


def test_serve_without_a_champion_is_one_error_line(model):
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "serve", model, "--port", str(stack.free_port())],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 1
    assert (
        out.stderr.strip().splitlines()[-1] == f"error: model {model!r} has no 'champion' alias to serve yet"
    )
    assert "Traceback" not in out.stderr
