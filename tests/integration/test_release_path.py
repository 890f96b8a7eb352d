"""Shadow-then-promote and the watch after a promotion (issue 13 parts 2 and 4) on real servers.

Real DVC registry, real GX, the ingest / retrain / monitor / rollback flows in-process against a real
Prefect API and a real MLflow server. Model quality is set by the estimator: the spec's small LightGBM
("strong") against one tree of two leaves ("weak", its probabilities barely leave the base rate), and a
gate tolerance of 1.0 lets either pass the gate, so only the side-by-side comparison on later labelled
batches tells them apart.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pandas as pd
import pytest

from adapters import audit_log
from adapters import mlflow_registry as model_registry
from evergreen.audit import Action
from evergreen.settings import get_settings
from tests.support.builders import ROOT, write_batch, write_spec
from tests.support.prefect_events import read_events
from tests.unit.test_spec_matrix import spec_dict, synth_frame

pytestmark = [pytest.mark.slow, pytest.mark.integration]

WEEK = 7 * 24
WEAK = {"training.estimator.params": {"n_estimators": 1, "num_leaves": 2, "min_child_samples": 5}}


def _model(tmp_path, monkeypatch, prefix: str, promotion: dict[str, Any]) -> str:
    model = f"{prefix}-{tmp_path.name[-6:].lower().replace('_', '-')}"
    raw = spec_dict("binary", name=model)
    raw["promotion"] = promotion
    write_spec(tmp_path / "models", raw)
    monkeypatch.setenv("EVERGREEN_MODELS_DIR", str(tmp_path / "models"))
    return model


def _weeks(seed: int) -> list:
    frame = synth_frame("binary", weeks=7, seed=seed)
    return [frame.iloc[i * WEEK : (i + 1) * WEEK] for i in range(7)]


def _ingest_and_monitor(model: str, week, path) -> dict[str, Any]:
    from flows.ingest import ingest
    from flows.monitor import monitor

    ing = ingest(model=model, path=write_batch(week, path))
    assert ing["status"] == "ingested", ing
    return monitor(model=model, data_rev=ing["data_rev"])


def _alias(model: str, alias: str) -> str | None:
    return model_registry.alias_version(model_registry.client(get_settings()), model, alias)


def _events(api: str, model: str, name: str) -> list[dict[str, Any]]:
    return read_events(api, resource_id=f"evergreen.model.{model}", names=[name])


def _audit(model: str, action: Action) -> list[Any]:
    return audit_log.read(get_settings(), model, action=action)


def _wait_events(api: str, model: str, name: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while True:
        evs = _events(api, model, name)
        if len(evs) >= count or time.monotonic() > deadline:
            return evs
        time.sleep(0.5)


def test_shadow_is_scored_beside_the_champion_then_promoted_or_retired(env, tmp_path, monkeypatch):
    api = env["PREFECT_API_URL"]
    from flows.ingest import ingest
    from flows.monitor import monitor
    from flows.retrain import retrain

    promotion = {"mode": "shadow", "shadow_batches": 2, "min_rows": 100, "alpha": 0.05}
    model = _model(tmp_path, monkeypatch, "shadow", promotion)
    weeks = _weeks(seed=5)
    seed = pd.concat(weeks[:3])
    assert ingest(model=model, path=write_batch(seed, tmp_path / "w0-2.parquet"))["status"] == "ingested"
    first = retrain(model=model, overrides=WEAK)  # no champion yet: promoted directly
    assert first["status"] == "promoted" and first["version"] == "1", first

    strong = retrain(model=model, force=True)
    assert strong["status"] == "shadow" and strong["champion_version"] == "1", strong
    assert _alias(model, "shadow") == strong["version"] == "2" and _alias(model, "champion") == "1"
    started = _wait_events(api, model, "evergreen.shadow.started", 1)
    assert started[0]["payload"]["version"] == "2" and started[0]["payload"]["shadow_batches"] == 2
    assert not _events(api, model, "evergreen.model.promoted")[1:]  # only v1's direct promotion
    (shadowed,) = _audit(model, Action.SHADOW)
    assert shadowed.versions == {"version": "2", "champion": "1"} and shadowed.evidence["step"] == "started"

    wait = _ingest_and_monitor(model, weeks[3], tmp_path / "w3.parquet")["shadow"]
    assert wait["decision"] == "wait" and wait["counted"] and wait["batches"] == 1, wait
    assert wait["batch_rows"] == WEEK and wait["shadow_loss"] < wait["champion_loss"]
    again = monitor(model=model, data_rev=wait["data_rev"])["shadow"]  # the same batch again (a retry)
    assert not again["counted"] and again["batches"] == 1 and again["decision"] == "wait", again
    decided = _ingest_and_monitor(model, weeks[4], tmp_path / "w4.parquet")["shadow"]
    assert decided["decision"] == "promote" and decided["decided"] == "promoted", decided
    assert decided["rows"] == 2 * WEEK and decided["p_better"] < 0.05
    assert _alias(model, "champion") == "2" and _alias(model, "shadow") is None
    promoted = _wait_events(api, model, "evergreen.shadow.promoted", 1)[0]["payload"]
    assert promoted["version"] == "2" and promoted["previous_champion"] == promoted["champion_version"] == "1"
    assert promoted["summary"] and promoted["reason"] == "shadow decision: promoted"
    assert len(_wait_events(api, model, "evergreen.shadow.scored", 3)) == 3  # the retry emits one too
    steps = [e.evidence["step"] for e in _audit(model, Action.SHADOW)]
    assert steps == ["started", "scored", "scored"], steps  # the repeated batch is not a new step
    by_shadow = [e for e in _audit(model, Action.PROMOTE) if e.evidence.get("source") == "shadow"]
    assert [e.versions for e in by_shadow] == [{"version": "2", "previous_champion": "1"}]
    champ = model_registry.get_champion(model_registry.client(get_settings()), model)
    assert champ is not None and champ.tags["replaced_version"] == "1" and "shadow.batch.2" in champ.tags

    weak = retrain(model=model, force=True, overrides=WEAK)
    assert weak["status"] == "shadow" and _alias(model, "shadow") == weak["version"] == "3", weak
    _ingest_and_monitor(model, weeks[5], tmp_path / "w5.parquet")
    retired = _ingest_and_monitor(model, weeks[6], tmp_path / "w6.parquet")["shadow"]
    assert retired["decision"] == "retire" and retired["decided"] == "retired", retired
    assert retired["p_worse"] < 0.05
    assert _alias(model, "champion") == "2" and _alias(model, "shadow") is None
    tags = model_registry.client(get_settings()).get_model_version(model, "3").tags
    assert tags["retired"] == "true" and tags["shadow_decision"] == "retired"
    (gone,) = _audit(model, Action.RETIRE)
    assert gone.versions == {"version": "3", "champion": "2"}
    payload = _wait_events(api, model, "evergreen.shadow.retired", 1)[0]["payload"]
    assert payload["version"] == "3" and payload["champion_version"] == "2"


def _deploy_rollback_only(model: str, models_dir, pool: str, dest, env: dict[str, str]) -> None:
    """Deploy just the rendered rollback/<model> deployment and its automation (not the monitor's
    ingest trigger: this test runs the monitor in-process, and a second one would race it)."""
    import stack
    from deployments.render import HEADER, PREFECT_VERSION, PROJECT_NAME, rollback_block
    from evergreen.spec import load_spec
    from tests.e2e.harness import deploy

    spec = load_spec(model, models_dir)
    head = HEADER.format(project=PROJECT_NAME, version=PREFECT_VERSION, pool=pool)
    dest.write_text(head + "\n".join(rollback_block(spec)) + "\n")
    stack.create_work_pool(env["PREFECT_API_URL"], pool, env=env)
    deploy(dest, env)


def test_watch_flags_a_worse_champion_and_the_automation_rolls_it_back(
    env, prefect_worker, prefect_server, tmp_path, monkeypatch
):
    """The regression event starts the rendered automation's rollback run on a real process worker."""
    from flows.ingest import ingest
    from flows.retrain import retrain
    from flows.rollback import RollbackError, rollback
    from tests.e2e.harness import wait_for

    promotion = {"watch_batches": 2, "min_rows": 100, "alpha": 0.05}
    model = _model(tmp_path, monkeypatch, "watch", promotion)
    weeks = _weeks(seed=9)
    seed = pd.concat(weeks[:3])
    assert ingest(model=model, path=write_batch(seed, tmp_path / "w0-2.parquet"))["status"] == "ingested"
    assert retrain(model=model)["status"] == "promoted"
    worse = retrain(model=model, force=True, overrides=WEAK)  # passes only thanks to the tolerance
    assert worse["status"] == "promoted" and worse["version"] == "2", worse

    run_env = {**env, "EVERGREEN_MODELS_DIR": os.environ["EVERGREEN_MODELS_DIR"]}
    pool = f"watch-pool-{tmp_path.name[-6:].lower().replace('_', '-')}"
    _deploy_rollback_only(model, tmp_path / "models", pool, tmp_path / "prefect.yaml", run_env)
    prefect_worker(pool, server=prefect_server, cwd=ROOT, env=run_env)

    out = _ingest_and_monitor(model, weeks[3], tmp_path / "w3.parquet")["watch"]
    assert out["status"] == "regressed" and out["version"] == "2" and out["previous_version"] == "1", out
    assert out["p_worse"] < out["alpha_per_look"] and out["rows"] == WEEK
    watched = _wait_events(env["PREFECT_API_URL"], model, "evergreen.champion.watched", 1)
    assert watched[0]["payload"]["status"] == "regressed"
    (regressed,) = _wait_events(env["PREFECT_API_URL"], model, "evergreen.champion.regressed", 1)

    # the automation <model>-rollback-on-regression runs rollback/<model> on the worker
    wait_for(f"{model} champion back at v1", lambda: _alias(model, "champion") == "1", timeout=180)
    (entry,) = wait_for("the rollback audit entry", lambda: _audit(model, Action.ROLLBACK), timeout=60)
    assert entry.versions == {"from_version": "2", "to_version": "1"}
    assert entry.evidence["trigger_event_id"] == regressed["id"] and entry.reason.startswith("watch: ")
    assert entry.actor == f"automation:{model}-rollback-on-regression", entry.actor
    rolled = _wait_events(env["PREFECT_API_URL"], model, "evergreen.model.rolled-back", 1)[0]["payload"]
    assert rolled["trigger_event_id"] == regressed["id"]

    params = {"model": model, "to_version": "1", "from_version": "2", "reason": "again"}
    with pytest.raises(RollbackError, match="nothing rolled back"):  # a repeated event moves nothing
        rollback(**params)
    # the restored champion is not watched against anything (the watch belongs to a promotion)
    again = _ingest_and_monitor(model, weeks[4], tmp_path / "w4.parquet")
    assert again["watch"] is None and again["champion_version"] == "1"
