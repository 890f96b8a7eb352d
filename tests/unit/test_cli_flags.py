"""`--debug` is a global option but users type it anywhere: cli.main moves it before the sub-command."""

from __future__ import annotations

import subprocess
import sys

from cli.main import hoist_global_flags
from tests.support.builders import ROOT


def test_debug_after_the_command_moves_before_it():
    argv = ["evergreen", "retrain", "elec2", "--force", "--debug"]
    assert hoist_global_flags(argv) == ["evergreen", "--debug", "retrain", "elec2", "--force"]


def test_debug_already_first_and_absent_are_unchanged():
    assert hoist_global_flags(["evergreen", "--debug", "history", "m"]) == [
        "evergreen",
        "--debug",
        "history",
        "m",
    ]
    assert hoist_global_flags(["evergreen", "history", "m"]) == ["evergreen", "history", "m"]


def test_debug_after_double_dash_is_an_argument():
    argv = ["evergreen", "x", "--", "--debug"]
    assert hoist_global_flags(argv) == argv


def test_trailing_debug_is_accepted(tmp_path):
    """Without the hoist Click answers "No such option: --debug" (exit 2) instead of the real error."""
    cmd = [
        sys.executable,
        "-m",
        "cli.main",
        "deployments",
        "render",
        "--models-dir",
        str(tmp_path),
        "--check",
    ]
    plain = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    debug = subprocess.run([*cmd, "--debug"], cwd=ROOT, capture_output=True, text=True)
    assert plain.returncode == debug.returncode == 1
    assert plain.stderr.strip().startswith("error: no model specs")
    assert "No such option" not in debug.stderr
    assert "error: no model specs" in debug.stderr


def test_unknown_model_fails_before_any_flow_starts(tmp_path):
    """No temporary Prefect server (30-60 s here) just to say the spec does not exist."""
    env = {
        "EVERGREEN_HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
        "PREFECT_API_URL": "http://127.0.0.1:9/api",
    }
    for cmd in (["retrain", "no-such-model"], ["monitor", "no-such-model", "--json"]):
        out = subprocess.run(
            [sys.executable, "-m", "cli.main", *cmd], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert out.returncode == 1, out.stderr
        assert out.stderr.strip() == "error: model spec not found: models/no-such-model.yaml"
        assert "Flow run" not in out.stderr
