"""prefect.yaml deployed to a real `prefect server start`, run through a real process worker to completion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from adapters import mlflow_registry as model_registry
from evergreen.datasets import prepare_elec2, weekly_batches
from evergreen.settings import get_settings

pytestmark = [pytest.mark.slow, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))


def _prefect(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([PREFECT, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, (
        f"prefect {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    )
    return out


def test_deploy_and_run_retrain_through_worker(
    prefect_server, mlflow_server, stack_env, prefect_worker, tmp_path, monkeypatch
):
    from flows.ingest import ingest

    monkeypatch.chdir(ROOT)
    env_vars = stack_env(
        prefect=prefect_server, mlflow=mlflow_server, home=tmp_path / "home", EVERGREEN_PROJECT_DIR=str(ROOT)
    )
    env = {**os.environ, **env_vars}
    weeks = weekly_batches(prepare_elec2(ROOT / "seeds" / "elec2" / "electricity.csv"), "timestamp")
    batch = tmp_path / "w80-89.csv"
    pd.concat(weeks[80:90]).to_csv(batch, index=False)
    assert ingest(model="elec2", path=str(batch))["status"] == "ingested"

    _prefect("work-pool", "create", "evergreen-pool", "--type", "process", "--overwrite", env=env)
    _prefect("--no-prompt", "deploy", "--all", env=env)
    listed = _prefect("deployment", "ls", env=env).stdout
    assert "retrain/elec2" in listed and "monitor/elec2" in listed and "ingest/elec2" in listed

    prefect_worker("evergreen-pool", server=prefect_server, cwd=ROOT, env=env_vars)
    run = _prefect(
        "deployment",
        "run",
        "retrain/elec2",
        "--param",
        "reason=manual",
        "--param",
        "force=true",
        "--watch",
        "--watch-timeout",
        "600",
        env=env,
        timeout=700,
    )
    assert "Completed" in run.stdout, run.stdout[-2000:]

    cl = model_registry.client(get_settings())
    champ = cl.get_model_version_by_alias("elec2", "champion")
    tags = champ.tags
    assert tags["reason"] == "manual" and tags["gate_passed"] == "true"
    # the version was written by the deployment's flow run, on the worker
    flow_run_id = tags["prefect_flow_run_id"]
    assert flow_run_id and flow_run_id in run.stdout
    decision = json.loads(tags["gate_decision"])
    assert decision["metric"] == "roc_auc" and decision["n_holdout"] == 336
