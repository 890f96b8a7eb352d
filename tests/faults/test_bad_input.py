"""Bad input and unreachable servers give one `error:` line (issue 9 cases 10, 11, 12; "What to build" 6).

Every case runs the real CLI as a subprocess against real Prefect and MLflow servers and asserts:
the exit code, exactly one stderr line starting with `error:` that names the problem, no
"Traceback", and for --json that stdout parses as JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.support.builders import ROOT, elec2_spec_dict, elec2_weeks, write_batch, write_spec

pytestmark = [pytest.mark.slow, pytest.mark.faults]

CLI_TIMEOUT = 600


@pytest.fixture
def model() -> str:
    """A model name of its own: the session's MLflow server is shared by every test."""
    return f"elec2-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def env(prefect_server, mlflow_server, stack_env, tmp_path, monkeypatch, model) -> dict[str, str]:
    monkeypatch.chdir(ROOT)
    models = tmp_path / "models"
    write_spec(models, elec2_spec_dict(model))
    return stack_env(
        prefect=prefect_server,
        mlflow=mlflow_server,
        home=tmp_path / "home",
        EVERGREEN_MODELS_DIR=str(models),
        EVERGREEN_MLFLOW_TIMEOUT="5",
        EVERGREEN_MLFLOW_MAX_RETRIES="1",
    )


def cli(env: dict[str, str], *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        env={**os.environ, **env, **extra},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )


def one_error(proc: subprocess.CompletedProcess[str], *needles: str, code: int = 1) -> str:
    """The single `error:` line; asserts the exit code, no traceback and that it names the problem."""
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == code, proc.stderr[-3000:]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def json_error(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    data = json.loads(proc.stdout)  # pure JSON, nothing else on stdout
    assert data["status"] == "error" and data["error"]
    return dict(data)


def bad_spec(env: dict[str, str], estimator: dict[str, Any], name: str = "bad") -> None:
    raw = elec2_spec_dict(name)
    raw["training"]["estimator"] = estimator
    write_spec(Path(env["EVERGREEN_MODELS_DIR"]), raw)


@pytest.mark.parametrize(
    ("estimator", "needle"),
    [
        ({"params": {"num_leaves": 1}}, "num_leaves"),
        ({"params": {"n_estimators": "many"}}, "n_estimators"),
        ({"kind": "sklearn", "class_path": "sklearn.linear_model.LinearRegression"}, "not a classifier"),
        ({"kind": "sklearn", "class_path": "subprocess.getoutput"}, "not a scikit-learn estimator class"),
    ],
    ids=["num_leaves", "n_estimators", "regressor", "getoutput"],
)
def test_bad_estimator_is_one_error_line(env, estimator, needle):
    """Case 10: LightGBM num_leaves 1 / n_estimators "many" / a regressor / subprocess.getoutput."""
    bad_spec(env, estimator)
    one_error(cli(env, "retrain", "bad"), "training.estimator", needle)


def test_class_path_function_is_never_called(env, tmp_path):
    """Case 10: a function in class_path was imported and called; now refused without a call."""
    marker = tmp_path / "called"
    bad_spec(env, {"kind": "sklearn", "class_path": "tests.faults.not_an_estimator.leave_marker"})
    proc = cli(env, "retrain", "bad", "--json", EVERGREEN_TEST_MARKER=str(marker))
    one_error(proc, "not a scikit-learn estimator class")
    assert "not a scikit-learn estimator class" in json_error(proc)["error"]
    assert not marker.exists()


def test_bogus_reason_lists_allowed_values(env, model):
    """Case 10: `--reason bogus`."""
    one_error(cli(env, "retrain", model, "--reason", "bogus"), "'bogus'", "manual", "drift", "backfill")


def test_monitor_before_any_ingest(env, model):
    """Case 10: `monitor` before any ingest, text mode."""
    proc = cli(env, "monitor", model)
    if proc.returncode == 0:  # the monitor may report "nothing to measure" instead of failing
        assert "error:" not in proc.stderr and "Traceback" not in proc.stderr
        return
    one_error(proc)


def test_mlflow_on_closed_port_names_the_server(env, model):
    """Case 10: an MLflow URI on a closed port gave a traceback after 253 s of retries."""
    from stack import free_port

    uri = f"http://127.0.0.1:{free_port()}"
    closed = {"MLFLOW_TRACKING_URI": uri, "EVERGREEN_MLFLOW_TRACKING_URI": uri}
    one_error(cli(env, "rollback", model, **closed), "MLflow server", uri, "unreachable")
    proc = cli(env, "rollback", model, "--json", **closed)
    one_error(proc, uri)
    assert uri in json_error(proc)["error"]


def test_read_only_home(env, model, tmp_path):
    """Case 10: a read-only EVERGREEN_HOME."""
    batch = write_batch(elec2_weeks()[0], tmp_path / "w00.csv")
    if os.geteuid() == 0:  # root ignores permission bits: use a place no one may create files in
        home = "/sys/fs/evergreen-home"
    else:
        ro = tmp_path / "ro-home"
        ro.mkdir()
        ro.chmod(0o555)
        home = str(ro)
    proc = cli(env, "ingest", model, batch, EVERGREEN_HOME=home, PREFECT_HOME=str(tmp_path / "ph"))
    one_error(proc, "cannot write", "EVERGREEN_HOME")


def test_directory_as_batch_says_directory(env, model, tmp_path):
    """Case 12: a directory was reported as "not found"."""
    folder = tmp_path / "batches"
    folder.mkdir()
    one_error(cli(env, "ingest", model, str(folder)), "is a directory")


def _ingest_and_train(env: dict[str, str], model: str, tmp_path: Path, *, as_json: bool) -> None:
    weeks = elec2_weeks()
    batch = write_batch(pd.concat(weeks[:10]), tmp_path / "w00-09.csv")
    flag = ["--json"] if as_json else []
    ingested = cli(env, "ingest", model, batch, *flag)
    assert ingested.returncode == 0, ingested.stderr[-3000:]
    trained = cli(env, "retrain", model, *flag)
    assert trained.returncode == 0, trained.stderr[-3000:]
    if as_json:
        # Case 11: MLflow's "View run ..." lines used to precede the JSON on stdout.
        assert json.loads(ingested.stdout)["status"] == "ingested"
        assert json.loads(trained.stdout)["status"] == "promoted"
        assert "View run" not in trained.stdout


def test_json_stdout_is_pure_and_monitor_needs_critical_feature(env, model, tmp_path):
    """Case 11 (--json stdout with an MLflow server) and case 12 (a monitor batch without its critical
    feature reported "drift none")."""
    _ingest_and_train(env, model, tmp_path, as_json=True)
    week = elec2_weeks()[12].drop(columns=["nswdemand"])
    batch = write_batch(week, tmp_path / "no-critical.csv")
    one_error(cli(env, "monitor", model, "--batch", batch), "nswdemand", "critical")


def test_missing_dvc_objects_are_named(env, model, tmp_path):
    """Case 12: missing DVC objects were reported as "no dataset ... ingest a batch first"."""
    weeks = elec2_weeks()
    batch = write_batch(pd.concat(weeks[:10]), tmp_path / "w00-09.csv")
    assert cli(env, "ingest", model, batch).returncode == 0
    home = Path(env["EVERGREEN_HOME"])
    shutil.rmtree(home / "data-registry" / ".dvc" / "cache")
    shutil.rmtree(home / "dvc-remote")
    error = one_error(cli(env, "retrain", model, "--force"), "DVC")
    assert "ingest a batch first" not in error and "missing" in error
