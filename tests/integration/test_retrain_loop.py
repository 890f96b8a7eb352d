"""The foundation loop on real parts: DVC registry + remote, GX suites, MLflow server, Prefect server.

Flows run in-process against the real Prefect API; MLflow is a real `mlflow server`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from adapters import dvc_registry as data_registry
from adapters import mlflow_registry as model_registry
from evergreen.settings import get_settings
from evergreen.spec import parse_spec
from evergreen.training import refit_rows, split
from tests.support.builders import elec2_spec_dict, elec2_weeks, write_batch, write_spec
from tests.support.prefect_events import wait_events

pytestmark = [pytest.mark.slow, pytest.mark.integration]

LINEAGE_TAGS = {
    "data_version",
    "data_rev",
    "data_md5",
    "train_start",
    "train_end",
    "holdout_start",
    "holdout_end",
    "window",
    "reason",
    "trigger_event_id",
    "prefect_flow_run_id",
    "code_git_sha",
    "gx_result",
    "gate_decision",
    "gate_passed",
    "train_seconds",
    "train_rows_md5",
    "reference_profile",
    "refit",
    "retrain_key",
    "gate_outcome",
    "gate_judged",
    "gate_rows",
    "registered",
}


@pytest.fixture(scope="module")
def weeks() -> list[pd.DataFrame]:
    return elec2_weeks()


def _registry_head() -> str:
    return data_registry.resolve_rev(get_settings(), None)


def test_two_ingests_two_retrains_gate_keeps_champion(env, prefect_server, weeks, tmp_path, monkeypatch):
    from flows.ingest import ingest
    from flows.retrain import retrain

    model = f"elec2-{tmp_path.name[-6:].lower().replace('_', '-')}"
    # A private copy of the demo spec under another name keeps this test's registry entries separate.
    spec_raw = elec2_spec_dict(model)
    models = tmp_path / "models"
    write_spec(models, spec_raw)
    monkeypatch.setenv("EVERGREEN_MODELS_DIR", str(models))

    first = ingest(model=model, path=write_batch(pd.concat(weeks[:10]), tmp_path / "w0-9.csv"))
    assert first["status"] == "ingested" and first["dataset_created"] and first["total_rows"] == 3360
    r1 = retrain(model=model, reason="manual")
    assert r1["status"] == "promoted" and r1["version"] == "1"

    second = ingest(model=model, path=write_batch(weeks[10], tmp_path / "w10.parquet"))
    assert second["total_rows"] == 3360 + 336 and not second["dataset_created"]
    assert second["data_version"] != first["data_version"]
    # A deliberately weakened challenger: only the weekday feature.
    weak = {"features": [f for f in spec_raw["features"] if f["name"] == "day"]}
    r2 = retrain(model=model, reason="manual", force=True, overrides=weak)
    assert r2["status"] == "rejected" and r2["version"] == "2"
    assert r2["champion_version"] == "1"

    cl = model_registry.client(get_settings())
    assert cl.get_model_version_by_alias(model, "champion").version == "1"
    assert cl.get_model_version_by_alias(model, "challenger").version == "2"
    v2 = cl.get_model_version(model, "2")
    assert "floor" in v2.tags["rejection_reason"] or "CI" in v2.tags["rejection_reason"]
    decision = json.loads(v2.tags["gate_decision"])
    assert decision["passed"] is False and decision["champion_version"] == "1"
    assert decision["ci_high"] < 0  # clearly worse than the champion on the same hold-out

    for v in ("1", "2"):
        tags = cl.get_model_version(model, v).tags
        missing = LINEAGE_TAGS - set(tags)
        assert not missing, f"v{v} lacks tags {missing}"
        assert tags["prefect_flow_run_id"] and tags["code_git_sha"]
        assert json.loads(tags["gx_result"])["success"] is True
    assert cl.get_model_version(model, "1").tags["data_version"] == first["data_version"]
    assert cl.get_model_version(model, "2").tags["data_version"] == second["data_version"]

    # Ingest's volume rule has the backtester's inputs: rows since the champion's data vs its training rows.
    assert first["new_share"] is None and first["volume_threshold_met"]  # no champion yet
    v1_train_rows = int(cl.get_model_version(model, "1").tags["train_rows"])
    assert second["new_rows_since_champion"] == 336
    assert second["new_share"] == round(336 / v1_train_rows, 6)
    assert second["volume_threshold_met"] is (
        336 / v1_train_rows >= spec_raw["triggers"]["volume"]["min_new_share"]
    )

    names = [
        "evergreen.data.ingested",
        "evergreen.model.registered",
        "evergreen.model.promoted",
        "evergreen.model.rejected",
    ]
    evs = wait_events(prefect_server.api_url, model, names, 6)
    by_name = {n: [e for e in evs if e["event"] == n] for n in names}
    assert [len(by_name[n]) for n in names] == [2, 2, 1, 1]
    ingested = by_name["evergreen.data.ingested"][-1]
    assert (
        ingested["resource"]["evergreen.volume-threshold-met"] == str(second["volume_threshold_met"]).lower()
    )
    assert ingested["payload"]["new_share"] == second["new_share"]
    assert ingested["payload"]["volume_min_new_share"] == spec_raw["triggers"]["volume"]["min_new_share"]
    (rejected,) = by_name["evergreen.model.rejected"]
    assert rejected["payload"]["version"] == "2" and rejected["payload"]["passed"] is False
    assert rejected["payload"]["champion_version"] == "1" and rejected["payload"]["previous_champion"] == "1"
    assert rejected["payload"]["data_version"] == second["data_version"]
    (promoted,) = by_name["evergreen.model.promoted"]
    assert promoted["payload"]["champion_version"] == "1" and promoted["payload"]["previous_champion"] == ""


def test_data_version_resolves_to_exact_training_rows(env, weeks, tmp_path):
    from flows.ingest import ingest
    from flows.retrain import retrain

    ingest(model="elec2", path=write_batch(pd.concat(weeks[20:30]), tmp_path / "w20-29.csv"))
    out = retrain(model="elec2", reason="manual", force=True)
    # more data lands after training; the pinned version must still give the same rows
    ingest(model="elec2", path=write_batch(weeks[30], tmp_path / "w30.csv"))
    head = _registry_head()
    again = ingest(model="elec2", path=write_batch(weeks[30], tmp_path / "w30-again.csv"))
    assert again["status"] == "duplicate" and _registry_head() == head

    settings = get_settings()
    cl = model_registry.client(settings)
    tags = cl.get_model_version("elec2", out["version"]).tags
    rev, md5 = tags["data_version"].split(":")
    assert rev == tags["data_rev"] and md5 == tags["data_md5"]
    frame, version = data_registry.read_dataset(settings, "elec2", rev)
    assert version.id == tags["data_version"]
    run_spec = parse_spec(
        yaml.safe_load(model_registry.load_artifact_text(settings, out["run_id"], "spec.yaml"))
    )
    sp = split(frame, run_spec)
    # a refit after a passed gate trains on the window including the hold-out
    rows = refit_rows(frame, run_spec)[0] if tags["refit"] == "true" else sp.train
    assert data_registry.frame_md5(rows) == tags["train_rows_md5"]
    assert str(rows["timestamp"].min()) == tags["train_start"]
    assert str(sp.holdout["timestamp"].max()) == tags["holdout_end"]
    profile = json.loads(
        model_registry.load_artifact_text(settings, out["run_id"], tags["reference_profile"])
    )
    assert profile["n_rows"] == int(tags["train_rows"])


@pytest.mark.parametrize("defect", ["nan_label", "missing_column", "wrong_type", "unknown_category"])
def test_bad_batch_is_quarantined_and_nothing_changes(env, weeks, tmp_path, defect):
    from flows.ingest import BatchRejected, ingest

    ingest(model="elec2", path=write_batch(pd.concat(weeks[40:44]), tmp_path / "seed.csv"))
    head = _registry_head()
    cl = model_registry.client(get_settings())
    versions_before = len(cl.search_model_versions("name='elec2'"))

    bad = weeks[44].copy()
    if defect == "nan_label":
        bad.loc[7, "class"] = None
    elif defect == "missing_column":
        bad = bad.drop(columns=["nswdemand"])
    elif defect == "wrong_type":
        bad["vicprice"] = bad["vicprice"].astype(str) + "x"
    else:
        bad.loc[3, "day"] = 9
    path = tmp_path / f"bad-{defect}.csv"
    write_batch(bad, path)
    with pytest.raises(BatchRejected) as exc:
        ingest(model="elec2", path=str(path))

    expected = {
        "nan_label": "class",
        "missing_column": "nswdemand",
        "wrong_type": "vicprice",
        "unknown_category": "day",
    }[defect]
    assert expected in str(exc.value)
    assert not path.exists(), "a rejected batch is moved to quarantine"
    qdir = get_settings().quarantine_dir / "elec2"
    reports = list(qdir.glob(f"*bad-{defect}.csv.report.json"))
    assert len(reports) == 1 and Path(json.loads(reports[0].read_text())["file"]).is_file()
    report = json.loads(reports[0].read_text())
    # GX rejects it, or the row checks that run before GX do (a missing column never reaches GX then).
    assert report.get("validation", {}).get("success") is False or report["checks"]["reasons"]
    assert _registry_head() == head, "no new DVC version for a rejected batch"
    assert len(cl.search_model_versions("name='elec2'")) == versions_before, "no retrain"


def test_failed_training_leaves_registry_untouched(env, weeks, tmp_path):
    from flows.ingest import ingest
    from flows.retrain import retrain

    ingest(model="elec2", path=write_batch(pd.concat(weeks[60:70]), tmp_path / "w60.csv"))
    retrain(model="elec2", reason="manual", force=True)
    cl = model_registry.client(get_settings())
    champion = cl.get_model_version_by_alias("elec2", "champion").version
    count = len(cl.search_model_versions("name='elec2'"))
    with pytest.raises((ValueError, RuntimeError), match="row_count|min_train_rows"):
        retrain(model="elec2", reason="manual", force=True, overrides={"training.min_train_rows": 10**6})
    assert cl.get_model_version_by_alias("elec2", "champion").version == champion
    assert len(cl.search_model_versions("name='elec2'")) == count

    # The alias step's error path: a version whose promotion half-happened is removed, the champion restored.
    settings = get_settings()
    run_id = cl.get_model_version("elec2", champion).run_id
    logged = model_registry.LoggedRun(run_id=run_id, model_uri=f"runs:/{run_id}/model", experiment_id="")
    extra = model_registry.register_version(settings, "elec2", logged, tags={}, description="half-registered")
    cl.set_registered_model_alias("elec2", "champion", extra)
    model_registry.undo_registration(settings, "elec2", extra, champion)
    assert cl.get_model_version_by_alias("elec2", "champion").version == champion
    assert len(cl.search_model_versions("name='elec2'")) == count


def test_rollback_moves_champion_back_with_audit(env, weeks, tmp_path):
    from flows.ingest import ingest
    from flows.retrain import retrain
    from flows.rollback import RollbackError, rollback

    ingest(model="elec2", path=write_batch(pd.concat(weeks[100:110]), tmp_path / "w100.csv"))
    first = retrain(model="elec2", reason="manual", force=True)
    # a gate with no hurdle promotes the second model whatever its score
    second = retrain(model="elec2", reason="manual", force=True, overrides={"gate.enabled": False})
    assert second["status"] == "promoted" and second["previous_champion"] == first["champion_version"]

    out = rollback(model="elec2", reason="bad predictions in prod")
    assert out["from_version"] == second["version"] and out["to_version"] == first["champion_version"]
    cl = model_registry.client(get_settings())
    champ = cl.get_model_version_by_alias("elec2", "champion")
    assert champ.version == first["champion_version"]
    assert champ.tags["rolled_back_from"] == second["version"]
    # Rollback keeps the target's promotion record (issue 9 case 8): no rewrite of promotion_reason.
    assert not champ.tags["promotion_reason"].startswith("rollback")
    assert (
        cl.get_model_version("elec2", second["version"]).tags["rollback_reason"] == "bad predictions in prod"
    )
    with pytest.raises(RollbackError, match="already the champion"):
        rollback(model="elec2", to_version=champ.version)
    with pytest.raises(RollbackError, match="no version"):
        rollback(model="elec2", to_version="999")
