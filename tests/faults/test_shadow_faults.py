"""A shadow promotion killed half way (SIGKILL right after `champion` moved) is finished by the next
monitor run: the promotion record, one `promote` audit entry, one `shadow.promoted` event, no `shadow`
alias left. Real Prefect, MLflow, DVC and GX; the killed monitor is a CLI subprocess (EVERGREEN_FAULT,
evergreen/faults.py); the DESIGN.md registry invariants hold afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from adapters import audit_log
from adapters import mlflow_registry as registry
from evergreen.audit import Action
from evergreen.settings import get_settings
from tests.faults.invariants import assert_registry_invariants
from tests.support.builders import ROOT, write_batch, write_spec
from tests.support.prefect_events import wait_events
from tests.unit.test_spec_matrix import spec_dict, synth_frame

pytestmark = [pytest.mark.slow, pytest.mark.faults]

WEEK = 7 * 24
WEAK = {"training.estimator.params": {"n_estimators": 1, "num_leaves": 2, "min_child_samples": 5}}


def test_a_shadow_promotion_killed_after_the_alias_move_is_finished_by_the_next_monitor(
    prefect_server, mlflow_server, stack_env, tmp_path, monkeypatch
):
    from flows.ingest import ingest
    from flows.monitor import monitor
    from flows.retrain import retrain

    monkeypatch.chdir(ROOT)
    model = f"shfault-{tmp_path.name[-6:].lower().replace('_', '-')}"
    raw = spec_dict("binary", name=model)
    raw["promotion"] = {"mode": "shadow", "shadow_batches": 1, "min_rows": 100}
    write_spec(tmp_path / "models", raw)
    stack_env(
        prefect=prefect_server, mlflow=mlflow_server, home=tmp_path / "home",
        EVERGREEN_MODELS_DIR=str(tmp_path / "models"),
    )  # fmt: skip
    frame = synth_frame("binary", weeks=5, seed=11)
    weeks = [frame.iloc[i * WEEK : (i + 1) * WEEK] for i in range(5)]
    ingest(model=model, path=write_batch(pd.concat(weeks[:3]), tmp_path / "w0-2.parquet"))
    assert retrain(model=model, overrides=WEAK)["status"] == "promoted"
    assert retrain(model=model, force=True)["status"] == "shadow"
    rev = ingest(model=model, path=write_batch(weeks[3], tmp_path / "w3.parquet"))["data_rev"]

    env = {
        **os.environ,
        "EVERGREEN_FAULT": "retrain:after-alias",
    }  # set_alias's point, shared by champion moves
    killed = subprocess.run(
        [sys.executable, "-m", "cli.main", "monitor", model, "--rev", rev, "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert killed.returncode == -9, (killed.returncode, killed.stderr[-2000:])
    cl = registry.client(get_settings())
    assert registry.alias_version(cl, model, "champion") == "2"
    assert registry.alias_version(cl, model, "shadow") == "2"  # the marker of the unfinished promotion
    assert "promoted_at" not in cl.get_model_version(model, "2").tags

    out = monitor(model=model, data_rev=rev)["shadow"]
    assert out["recovered"] is True and out["decided"] == "promoted", out
    assert registry.alias_version(cl, model, "shadow") is None
    tags = cl.get_model_version(model, "2").tags
    assert tags["promoted_at"] and tags["replaced_version"] == "1" and tags["shadow_decision"] == "promoted"
    promotes = audit_log.read(get_settings(), model, action=Action.PROMOTE)
    assert [e.versions["version"] for e in promotes] == ["1", "2"]
    assert_registry_invariants(model)
    again = monitor(model=model, data_rev=rev)["shadow"]
    assert again is None  # nothing left to finish or score
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all(timeout=30)  # everything this process emitted has been sent
    evs = wait_events(prefect_server.api_url, model, ["evergreen.shadow.promoted"], 1)
    assert len(evs) == 1, evs
