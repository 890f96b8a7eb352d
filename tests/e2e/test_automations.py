"""The event-driven loop on real servers: ingest -> monitor -> drift.detected -> automation -> retrain.

Every test deploys the repo's prefect.yaml (renamed for a private model, see conftest.py) to a real
`prefect server`, runs flows on a real `prefect worker` process worker, and tracks models in a real
MLflow server. Runs once per Prefect backend: SQLite, and PostgreSQL with EVERGREEN_TEST_POSTGRES=1.

"Nothing else happened" is checked with a sentinel instead of a sleep: after the events under test,
the test emits one more event that an automation does act on. Once that event's run exists, the
triggers service has processed everything emitted before it, so the run counts are final.
"""

from __future__ import annotations

import contextlib
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import stack
from tests.e2e.conftest import (
    ROOT,
    SEED_WEEKS,
    Stack,
    deploy,
    parse_time,
    read_events,
    related_id,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def _occurred(event: dict[str, Any]) -> Any:
    when = parse_time(event["occurred"])
    assert when is not None, event
    return when


DRIFT_PAYLOAD = {
    "drift_score": 0.9,
    "drift_share": 0.6,
    "drifted_features": ["nswdemand"],
    "data_version": "e2e",
}
FRESH = pytest.mark.champion_promoted(timedelta(0))  # promoted just now: inside the 6 h cooldown


def drifted(week: pd.DataFrame) -> pd.DataFrame:
    """A real Elec2 week with NSW demand (a critical feature) and price pushed up, still inside [0, 1]."""
    out = week.copy()
    out["nswdemand"] = (out["nswdemand"] + 0.25).clip(0, 1)
    out["nswprice"] = (out["nswprice"] * 2).clip(0, 1)
    return out


def not_drifted(stack: Stack) -> pd.DataFrame:
    """Rows drawn from the champion's own training weeks, stamped with the next week's times.

    Real consecutive Elec2 weeks drift (nswprice moves week to week), so a genuinely non-drifted batch
    is a sample of the distribution the champion was trained on.
    """
    weeks = stack.seed.weeks
    rows = pd.concat(weeks[SEED_WEEKS - 9 : SEED_WEEKS - 1], ignore_index=True).sample(336, random_state=11)
    rows = rows.reset_index(drop=True)
    rows["timestamp"] = weeks[SEED_WEEKS]["timestamp"].to_numpy()[: len(rows)]
    return rows


def sentinel_retrain(stack: Stack) -> str:
    """Emit one drift event and wait for the retrain run it starts: the triggers service is caught up."""
    sid = stack.emit("evergreen.drift.detected", {**DRIFT_PAYLOAD, "sentinel": True})
    wait_for(
        "the sentinel's retrain run",
        lambda: [r for r in stack.runs("retrain") if r.parameters.get("trigger_event_id") == sid],
    )
    return sid


def automation_executions(stack: Stack) -> list[dict]:
    """`prefect.automation.action.executed` events whose run belongs to this model's deployments."""
    mine = {str(r.id) for flow in ("retrain", "monitor", "ingest") for r in stack.runs(flow)}
    evs = read_events(stack.api_url, names=["prefect.automation.action.executed"])
    return [e for e in evs if related_id(e, "flow-run") in mine]


# ------------------------------------------------------------------------------------------------ 0


def test_repo_prefect_yaml_deploys_as_is(prefect_backend_server, stack_env, tmp_path):
    """`prefect --no-prompt deploy --all` from the repo root: elec2's 4 deployments and 4 automations as
    designed (and every other shipped model's, each on its own queues)."""
    from prefect.client.orchestration import get_client

    from deployments import deployment_names, load_specs

    env = stack_env(prefect=prefect_backend_server, home=tmp_path / "home")
    stack.create_work_pool(prefect_backend_server.api_url, "evergreen-pool")
    deploy(ROOT / "prefect.yaml", env)
    names = ("retrain/elec2", "retrain/elec2-p5", "monitor/elec2", "ingest/elec2")
    every = deployment_names(load_specs(ROOT / "models"))
    models = tuple(f"{s.name}-" for s in load_specs(ROOT / "models"))
    try:
        with get_client(sync_client=True) as c:
            # Any: the client's union types (trigger and action kinds) are narrowed by the asserts below
            deps: dict[str, Any] = {n: c.read_deployment_by_name(n) for n in names}
            autos: dict[str, Any] = {a.name: a for a in c.read_automations() if a.name.startswith("elec2-")}
        for dep in deps.values():
            assert dep.work_pool_name == "evergreen-pool"
            assert dep.pull_steps == [
                {"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}
            ]
        assert deps["retrain/elec2"].global_concurrency_limit.limit == 1
        assert deps["retrain/elec2"].work_queue_name == "retrain-p1"
        assert deps["retrain/elec2-p5"].work_queue_name == "retrain-p5"
        assert [s.schedule.cron for s in deps["retrain/elec2-p5"].schedules] == ["0 2 * * 1"]
        assert [s.schedule.cron for s in deps["monitor/elec2"].schedules] == ["0 6 * * *"]
        assert set(autos) == {
            "elec2-retrain-on-drift",
            "elec2-retrain-on-performance",
            "elec2-retrain-on-volume",
            "elec2-monitor-on-ingest",
        }
        reasons = {}
        for name, a in autos.items():
            (action,) = a.actions
            target = deps["monitor/elec2" if "monitor" in name else "retrain/elec2"]
            assert action.deployment_id == target.id
            assert a.trigger.match.root["prefect.resource.id"] == "evergreen.model.elec2"
            if "retrain" in name:
                assert action.parameters["trigger_event_id"] == "{{ event.id | string }}"
                assert a.trigger.for_each == {"prefect.resource.id"} and a.trigger.within.total_seconds() > 0
                reasons[next(iter(a.trigger.expect))] = action.parameters["reason"]
        assert reasons == {
            "evergreen.drift.detected": "drift",
            "evergreen.performance.degraded": "performance",
            "evergreen.data.ingested": "volume",
        }
        vol = autos["elec2-retrain-on-volume"].trigger.match.root
        assert vol["evergreen.volume-threshold-met"] == "true"
    finally:  # leave no shipped model's deployments or automations on the shared session server
        with get_client(sync_client=True) as c:
            for a in c.read_automations():
                if a.name.startswith(models):
                    c.delete_automation(a.id)
            for n in every:
                with contextlib.suppress(Exception):
                    c.delete_deployment(c.read_deployment_by_name(n).id)


# ------------------------------------------------------------------------------------------------ 1


def test_drifted_batch_runs_the_whole_chain(e2e: Stack):
    """Ingest (deployment) -> data.ingested -> monitor (automation) -> drift.detected -> retrain (automation)."""
    s = e2e
    champion_before = s.mlflow().get_model_version_by_alias(s.model, "champion").version
    path = s.write_batch(drifted(s.seed.weeks[SEED_WEEKS]), "drifted.csv")
    ingest_id = s.run_deployment("ingest", model=s.model, path=path)

    ingest_run = s.wait_run(ingest_id)
    assert ingest_run.state_type.value == "COMPLETED", ingest_run.state
    (ingested,) = s.wait_events(["evergreen.data.ingested"])
    assert ingested["payload"]["rows"] == 336
    assert ingested["resource"]["evergreen.volume-threshold-met"] == "false"  # 336 new rows of 3360: 10%

    (monitor_run,) = wait_for("the monitor run started by data.ingested", lambda: s.runs("monitor"))
    assert monitor_run.parameters == {"model": s.model, "data_rev": ingested["payload"]["data_rev"]}
    monitor_run = s.wait_run(monitor_run.id)
    assert monitor_run.state_type.value == "COMPLETED", monitor_run.state

    (detected,) = s.wait_events(["evergreen.drift.detected"])
    p = detected["payload"]
    assert p["dataset_drift"] is True and "nswdemand" in p["drifted_features"]
    assert p["data_version"] == ingested["payload"]["data_version"] and p["n_rows"] == 336
    assert p["features"]["nswdemand"]["value"] > p["features"]["nswdemand"]["threshold"]
    assert related_id(detected, "flow-run") == str(monitor_run.id)
    (measured,) = s.wait_events(["evergreen.drift.measured"])
    assert measured["payload"]["drift_detected"] is True

    (retrain_run,) = wait_for("the retrain run started by drift.detected", lambda: s.runs("retrain"))
    assert retrain_run.parameters["reason"] == "drift"
    assert retrain_run.parameters["trigger_event_id"] == detected["id"]
    retrain_run = s.wait_run(retrain_run.id)
    assert retrain_run.state_type.value == "COMPLETED", retrain_run.state

    # the automation received exactly this event and created exactly this run
    (executed,) = wait_for(
        "the automation's action.executed event",
        lambda: [e for e in automation_executions(s) if related_id(e, "flow-run") == str(retrain_run.id)],
    )
    assert related_id(executed, "triggering-event") == detected["id"]

    new = [v for k, v in s.versions().items() if k != champion_before]
    assert len(new) == 1, sorted(s.versions())
    tags = new[0].tags
    assert tags["trigger_event_id"] == detected["id"]
    assert tags["reason"] == "drift" and tags["prefect_flow_run_id"] == str(retrain_run.id)
    assert tags["data_rev"] == ingested["payload"]["data_rev"]  # trained on the data that drifted
    (registered,) = s.wait_events(["evergreen.model.registered"])
    assert registered["payload"]["trigger_event_id"] == detected["id"]
    assert len(s.runs("retrain")) == 1  # the volume trigger did not fire

    occurred = parse_time(detected["occurred"])
    s.timings.update(
        {
            "drift_event_to_retrain_run_created_s": (retrain_run.created - occurred).total_seconds(),
            "drift_event_to_retrain_running_s": (retrain_run.start_time - occurred).total_seconds(),
            "ingested_event_to_monitor_run_created_s": (
                monitor_run.created - parse_time(ingested["occurred"])
            ).total_seconds(),
            "monitor_run_s": monitor_run.total_run_time.total_seconds(),
            "retrain_run_s": retrain_run.total_run_time.total_seconds(),
            "chain_ingest_created_to_retrain_done_s": (
                retrain_run.end_time - ingest_run.created
            ).total_seconds(),
            "chain_ingest_done_to_retrain_running_s": (
                retrain_run.start_time - ingest_run.end_time
            ).total_seconds(),
            "deploy_s": s.deploy_seconds,
        }
    )


# ------------------------------------------------------------------------------------------------ 2


@FRESH
def test_burst_of_drift_events_starts_one_retrain(e2e: Stack):
    s = e2e
    ids = [s.emit("evergreen.drift.detected", {**DRIFT_PAYLOAD, "burst": i}) for i in range(5)]
    s.wait_events(["evergreen.drift.detected"], count=5)
    (first,) = wait_for("the burst's retrain run", lambda: s.runs("retrain"))
    assert first.parameters["reason"] == "drift" and first.parameters["trigger_event_id"] in ids

    # Sentinel on another automation of the same model: a performance event (own bucket) must start
    # its own run; once it has, all five drift events have been through the triggers service.
    pid = s.emit("evergreen.performance.degraded", {"metric": "roc_auc", "value": 0.5, "floor": 0.7})
    wait_for(
        "the sentinel's retrain run",
        lambda: [r for r in s.runs("retrain") if r.parameters.get("trigger_event_id") == pid],
    )
    runs = s.runs("retrain")
    assert sorted(r.parameters["reason"] for r in runs) == ["drift", "performance"], [
        r.parameters for r in runs
    ]
    done = s.wait_run(first.id)
    assert done.state_type.value == "COMPLETED"
    # The run turns COMPLETED before its process drains its events, and the sentinel's run may skip
    # first: wait for the skip that names the burst's trigger, not for any skip.
    wait_for(
        "the burst run's evergreen.retrain.skipped",
        lambda: [
            e
            for e in s.events(["evergreen.retrain.skipped"])
            if e["payload"]["trigger_event_id"] == first.parameters["trigger_event_id"]
        ],
    )
    s.timings["burst_first_event_to_run_created_s"] = (
        first.created - min(_occurred(e) for e in s.events(["evergreen.drift.detected"]))
    ).total_seconds()


# ------------------------------------------------------------------------------------------------ 3


@FRESH
def test_non_drifted_batch_emits_measured_only(e2e: Stack):
    s = e2e
    ingest_run = s.wait_run(
        s.run_deployment("ingest", model=s.model, path=s.write_batch(not_drifted(s), "same.csv"))
    )
    assert ingest_run.state_type.value == "COMPLETED", ingest_run.state
    (monitor_run,) = wait_for("the monitor run", lambda: s.runs("monitor"))
    monitor_run = s.wait_run(monitor_run.id)
    assert monitor_run.state_type.value == "COMPLETED", monitor_run.state
    (measured,) = s.wait_events(["evergreen.drift.measured"])
    assert measured["payload"]["dataset_drift"] is False and measured["payload"]["drifted_features"] == []
    assert measured["payload"]["n_rows"] == 336 and measured["payload"]["performance"]["degraded"] is False

    sid = sentinel_retrain(s)
    # the event store lags the triggers service: wait until the sentinel itself is stored
    wait_for("the sentinel event to be stored", lambda: sid in {e["id"] for e in s.events()})
    assert [e["id"] for e in s.events(["evergreen.drift.detected"])] == [sid]
    assert s.events(["evergreen.performance.degraded"]) == []
    assert [r.parameters["trigger_event_id"] for r in s.runs("retrain")] == [sid]


# ------------------------------------------------------------------------------------------------ 4


@FRESH
def test_rejected_batch_starts_nothing(e2e: Stack):
    s = e2e
    bad = s.seed.weeks[SEED_WEEKS].copy()
    bad.loc[3, "day"] = 9  # not a weekday
    bad.loc[5, "nswdemand"] = 1.7  # outside [0, 1]
    path = s.write_batch(bad, "bad.csv")
    run = s.wait_run(s.run_deployment("ingest", model=s.model, path=path))
    assert run.state_type.value == "FAILED"  # BatchRejected: the run fails loudly
    (rejected,) = s.wait_events(["evergreen.data.rejected"])
    assert Path(rejected["payload"]["quarantined_to"]).is_file() and not Path(path).exists()
    assert any("day" in f for f in rejected["payload"]["failures"])

    sid = sentinel_retrain(s)
    wait_for("the sentinel event to be stored", lambda: sid in {e["id"] for e in s.events()})
    assert s.events(["evergreen.data.ingested"]) == []
    assert s.runs("monitor") == []
    assert [r.parameters["trigger_event_id"] for r in s.runs("retrain")] == [sid]


# ------------------------------------------------------------------------------------------------ 5


@FRESH
def test_retrain_inside_cooldown_is_skipped_and_force_trains(e2e: Stack):
    s = e2e
    versions_before = set(s.versions())
    eid = s.emit("evergreen.drift.detected", DRIFT_PAYLOAD)
    (run,) = wait_for("the retrain run", lambda: s.runs("retrain"))
    assert s.wait_run(run.id).state_type.value == "COMPLETED"
    (skipped,) = s.wait_events(["evergreen.retrain.skipped"])
    p = skipped["payload"]
    assert p["reason"] == "cooldown" and "inside cooldown 6h" in p["detail"]
    assert p["requested_reason"] == "drift" and p["trigger_event_id"] == eid
    assert related_id(skipped, "flow-run") == str(run.id)
    assert set(s.versions()) == versions_before

    t0 = time.monotonic()
    forced = s.wait_run(s.run_deployment("retrain", model=s.model, reason="manual", force=True))
    assert forced.state_type.value == "COMPLETED", forced.state
    assert len(s.wait_events(["evergreen.model.registered"])) == 1
    assert len(s.events(["evergreen.retrain.skipped"])) == 1
    new = set(s.versions()) - versions_before
    assert len(new) == 1
    assert s.versions()[new.pop()].tags["reason"] == "manual"
    s.timings["forced_retrain_wall_s"] = time.monotonic() - t0


def test_rendered_prefect_yaml_differs_only_by_name(tmp_path):
    """The e2e stacks deploy the repo's prefect.yaml; only the model name and the work pool change."""
    from tests.e2e.conftest import render_prefect_yaml

    out = yaml.safe_load(render_prefect_yaml("e2e-x", "pool-x", tmp_path / "p.yaml").read_text())
    src = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    elec2 = [d for d in src["deployments"] if d["parameters"]["model"] == "elec2"]
    assert len(out["deployments"]) == len(elec2) == 4
    for a, b in zip(out["deployments"], elec2, strict=True):
        assert a["name"].replace("e2e-x", "elec2") == b["name"] and a["parameters"] == {"model": "e2e-x"}
        assert a["entrypoint"] == b["entrypoint"] and a["work_pool"]["name"] == "pool-x"
        assert a.get("concurrency_limit") == b.get("concurrency_limit")
        for ta, tb in zip(a.get("triggers", []), b.get("triggers", []), strict=True):
            assert ta["parameters"] == tb["parameters"] and ta["expect"] == tb["expect"]
            assert {k: v for k, v in ta.items() if k not in ("name", "match")} == {
                k: v for k, v in tb.items() if k not in ("name", "match")
            }
            assert ta["match"]["prefect.resource.id"] == "evergreen.model.e2e-x"
