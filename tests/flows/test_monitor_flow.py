"""The monitor flow in-process, against a real Prefect server and a real MLflow server.

One champion is trained once per module (private model name, private EVERGREEN_HOME); each test then
runs the monitor flow on a batch and reads back what it returned, the events the server stored and
the champion's tags.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from evergreen.datasets import prepare_elec2, weekly_batches
from tests.support.prefect_events import read_events as stored_events

pytestmark = [pytest.mark.slow, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
SEED_WEEKS = 10  # the champion trains on weeks 0..9 (last one is its hold-out)


def _refresh_prefect() -> None:
    if "prefect.context" in sys.modules:
        sys.modules["prefect.context"].refresh_global_settings_context()


def read_events(api_url: str, model: str, names: list[str] | None = None) -> list[dict[str, Any]]:
    """Events about `model` stored by the server, oldest first."""
    return stored_events(api_url, resource_id=f"evergreen.model.{model}", names=names)


def wait_events(
    api_url: str, model: str, names: list[str], count: int, timeout: float = 60
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        evs = read_events(api_url, model, names)
        if len(evs) >= count or time.monotonic() > deadline:
            return evs
        time.sleep(0.5)


def wait_event(api_url: str, model: str, name: str, event_id: str, timeout: float = 60) -> dict[str, Any]:
    """The payload of one stored event, once the server has it."""
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in read_events(api_url, model, [name]) if e["id"] == event_id]
        if found or time.monotonic() > deadline:
            assert found, f"event {name} {event_id} not stored within {timeout} s"
            return found[0]["payload"]
        time.sleep(0.5)


@pytest.fixture(scope="module")
def weeks() -> list[pd.DataFrame]:
    return weekly_batches(prepare_elec2(ROOT / "seeds" / "elec2" / "electricity.csv"), "timestamp")


@pytest.fixture(scope="module")
def champion(prefect_server, mlflow_server, weeks, tmp_path_factory):
    """A private copy of the elec2 spec with a promoted champion trained on weeks 0..9."""
    mp = pytest.MonkeyPatch()
    tmp = tmp_path_factory.mktemp("monitor-flow")
    model = f"mon-{uuid.uuid4().hex[:8]}"
    spec_raw = yaml.safe_load((ROOT / "models" / "elec2.yaml").read_text())
    spec_raw["name"] = model
    models = tmp / "models"
    models.mkdir()
    (models / f"{model}.yaml").write_text(yaml.safe_dump(spec_raw))
    env = {
        "EVERGREEN_HOME": str(tmp / "home"),
        "EVERGREEN_MODELS_DIR": str(models),
        "PREFECT_API_URL": prefect_server.api_url,
        "PREFECT_HOME": str(tmp / "prefect-client"),
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        "EVERGREEN_MLFLOW_TRACKING_URI": mlflow_server.url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    for k, v in env.items():
        mp.setenv(k, v)
    _refresh_prefect()
    from flows.ingest import ingest
    from flows.retrain import retrain

    seed = tmp / "seed.parquet"
    pd.concat(weeks[:SEED_WEEKS]).to_parquet(seed, index=False)
    ingest(model=model, path=str(seed))
    out = retrain(model=model, reason="manual")
    assert out["status"] == "promoted", out
    try:
        yield {
            "model": model,
            "tmp": tmp,
            "version": out["version"],
            "api": prefect_server.api_url,
            "spec": spec_raw,
            "run_id": out["run_id"],
        }
    finally:
        mp.undo()
        _refresh_prefect()


def _champion_tags(model: str) -> dict[str, str]:
    from adapters import mlflow_registry as model_registry
    from evergreen.settings import get_settings

    champ = model_registry.get_champion(model_registry.client(get_settings()), model)
    assert champ is not None
    return champ.tags


def _training_rows(champion, weeks) -> pd.DataFrame:
    """A batch drawn from the champion's own training weeks: by construction, not drifted."""
    train = pd.concat(weeks[SEED_WEEKS - 9 : SEED_WEEKS - 1], ignore_index=True)
    return train.sample(336, random_state=7).reset_index(drop=True)


def _drifted(week: pd.DataFrame) -> pd.DataFrame:
    out = week.copy()
    out["nswdemand"] = (out["nswdemand"] + 0.25).clip(0, 1)  # a critical feature
    out["nswprice"] = (out["nswprice"] * 2).clip(0, 1)
    return out


def _write(frame: pd.DataFrame, path: Path) -> str:
    frame.to_csv(path, index=False) if path.suffix == ".csv" else frame.to_parquet(path, index=False)
    return str(path)


def test_non_drifted_batch_emits_measured_only(champion, weeks):
    from flows.monitor import monitor

    model = champion["model"]
    out = monitor(model=model, batch=_write(_training_rows(champion, weeks), champion["tmp"] / "same.csv"))
    assert out["status"] == "measured" and out["champion_version"] == champion["version"]
    assert out["n_rows"] == 336 and out["selection"] == "file"
    assert out["drift"]["dataset_drift"] is False and not out["drift_detected"]
    assert set(out["events"]) == {"evergreen.drift.measured"}
    perf = out["performance"]
    assert perf["report"]["metric"] == "roc_auc" and perf["report"]["n"] == 336
    assert perf["batch_degraded"] is False and perf["streak"] == 0

    evs = wait_events(champion["api"], model, ["evergreen.drift.measured"], 1)
    ev = next(e for e in evs if e["id"] == out["events"]["evergreen.drift.measured"])
    p = ev["payload"]
    assert p["dataset_drift"] is False and p["n_rows"] == 336 and p["champion_version"] == champion["version"]
    assert set(p["features"]) == {f["name"] for f in champion["spec"]["features"]}
    assert p["performance"]["metric"] == "roc_auc" and p["performance"]["value"] > 0.7
    assert ev["resource"]["prefect.resource.name"] == model


def test_drifted_batch_emits_detected_with_numbers(champion, weeks):
    from flows.monitor import monitor

    model = champion["model"]
    out = monitor(model=model, batch=_write(_drifted(weeks[SEED_WEEKS]), champion["tmp"] / "drifted.parquet"))
    assert out["drift_detected"] is True
    assert "nswdemand" in out["drift"]["drifted_features"]
    detected_id = out["events"]["evergreen.drift.detected"]
    evs = wait_events(champion["api"], model, ["evergreen.drift.detected"], 1)
    ev = next(e for e in evs if e["id"] == detected_id)
    p = ev["payload"]
    assert p["dataset_drift"] is True and p["drift_score"] > 0.2
    assert set(p["drifted_features"]) == set(p["features"]) >= {"nswdemand"}
    assert p["features"]["nswdemand"]["value"] > p["features"]["nswdemand"]["threshold"]
    assert p["n_rows"] == 336 and "data_version" in p and p["model"] == model
    # the flow run is a related resource, so the UI links event -> run
    assert any(r.get("prefect.resource.role") == "flow-run" for r in ev["related"])


def test_registry_rows_by_rev_and_unseen_by_champion(champion, weeks):
    from flows.ingest import ingest
    from flows.monitor import monitor

    model = champion["model"]
    ing = ingest(model=model, path=_write(weeks[SEED_WEEKS], champion["tmp"] / "w10.parquet"))
    by_rev = monitor(model=model, data_rev=ing["data_rev"])
    assert by_rev["selection"] == "added-at-rev" and by_rev["n_rows"] == 336
    assert by_rev["data_version"] == ing["data_version"]
    ing2 = ingest(model=model, path=_write(weeks[SEED_WEEKS + 1], champion["tmp"] / "w11.parquet"))
    head = monitor(model=model, data_rev="")  # what the ingest trigger passes without a rev; the cron too
    assert head["selection"] == "unseen-by-champion" and head["n_rows"] == 2 * 336
    assert head["data_version"] == ing2["data_version"]


def test_performance_degraded_after_k_consecutive_batches(champion, weeks):
    from flows.monitor import monitor
    from tasks.monitoring import STREAK_TAG

    model = champion["model"]
    k = champion["spec"]["triggers"]["performance"]["consecutive"]
    outs = []
    for i in range(k):
        bad = _training_rows(champion, weeks).sample(frac=1.0, random_state=i).reset_index(drop=True)
        bad["class"] = bad["class"].map({"UP": "DOWN", "DOWN": "UP"})  # the world flipped
        path = _write(bad, champion["tmp"] / f"flipped-{i}.csv")
        outs.append(monitor(model=model, batch=path))
        assert int(_champion_tags(model)[STREAK_TAG]) == i + 1
    assert [o["performance_degraded"] for o in outs] == [False] * (k - 1) + [True]
    assert all(o["performance"]["report"]["below_floor"] for o in outs)
    assert "evergreen.performance.degraded" in outs[-1]["events"]
    assert "evergreen.performance.degraded" not in outs[0]["events"]
    ev = next(
        e
        for e in wait_events(champion["api"], model, ["evergreen.performance.degraded"], 1)
        if e["id"] == outs[-1]["events"]["evergreen.performance.degraded"]
    )
    p = ev["payload"]
    assert p["metric"] == "roc_auc" and p["value"] < p["floor"] and p["ci_high"] < p["floor"]
    assert p["streak"] == k and p["required"] == k and p["reference"] > p["floor"]

    # the same batch measured again is not counted twice; a good batch resets the run
    again = monitor(model=model, batch=path)
    assert again["performance"]["counted"] is False and int(_champion_tags(model)[STREAK_TAG]) == k
    good = monitor(model=model, batch=_write(_training_rows(champion, weeks), champion["tmp"] / "good.csv"))
    assert good["performance"]["streak"] == 0 and int(_champion_tags(model)[STREAK_TAG]) == 0


def test_no_champion_is_reported_not_raised(champion, weeks):
    from flows.monitor import monitor

    other = f"nochamp-{uuid.uuid4().hex[:6]}"
    models = Path(champion["tmp"]) / "models"
    (models / f"{other}.yaml").write_text(yaml.safe_dump({**champion["spec"], "name": other}))
    out = monitor(model=other, batch=_write(weeks[3], champion["tmp"] / "w3.csv"))
    assert out["status"] == "no-champion" and "no champion" in out["detail"]
    assert set(out["events"]) == {"evergreen.drift.measured"}
    ev = wait_events(champion["api"], other, ["evergreen.drift.measured"], 1)[0]
    assert ev["payload"]["champion_version"] == ""


def test_cli_monitor_json_prints_full_statistics(champion, weeks):
    from typer.testing import CliRunner

    from cli.main import _register, app

    _register()
    path = _write(_drifted(weeks[SEED_WEEKS]), champion["tmp"] / "cli.csv")
    res = CliRunner().invoke(app, ["monitor", champion["model"], "--batch", path, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["drift_detected"] is True
    nsw = out["drift"]["features"]["nswdemand"]
    assert {"psi", "ks", "js", "chi2_pvalue", "wasserstein", "p_value"} <= set(nsw)
    assert out["performance"]["report"]["ci_low"] is not None

    human = CliRunner().invoke(app, ["monitor", champion["model"], "--batch", path])
    assert human.exit_code == 0, human.output
    assert "drift DETECTED" in human.stdout and "* nswdemand" in human.stdout and "roc_auc" in human.stdout

    both = CliRunner().invoke(app, ["monitor", champion["model"], "--batch", path, "--rev", "HEAD"])
    assert both.exit_code != 0


def test_nothing_ingested_yet_is_reported_not_raised(champion):
    """The cron monitor of a model whose dataset is still empty completes and says so."""
    from adapters.dvc_registry import RegistryError
    from flows.monitor import monitor

    other = f"nodata-{uuid.uuid4().hex[:6]}"
    spec = {**champion["spec"], "name": other, "data": {**champion["spec"]["data"], "path": other}}
    (Path(champion["tmp"]) / "models" / f"{other}.yaml").write_text(yaml.safe_dump(spec))
    out = monitor(model=other)
    assert out["status"] == "no-data" and out["n_rows"] == 0 and "no data for" in out["detail"]
    assert set(out["events"]) == {"evergreen.drift.measured"}
    with pytest.raises(RegistryError):  # an explicit rev without data is an error
        monitor(model=other, data_rev="HEAD")


def test_multivariate_drift_and_ranked_impact_in_the_payload(champion, weeks):
    """The version stores its reference sample; with the detector and importance weighting switched on
    in the spec, the monitor reports the classifier's verdict and features ranked by impact."""
    from flows.monitor import monitor

    model = champion["model"]
    assert _champion_tags(model)["reference_sample"] == "reference_sample.parquet"
    path = Path(champion["tmp"]) / "models" / f"{model}.yaml"
    raw = {**champion["spec"], "triggers": json.loads(json.dumps(champion["spec"]["triggers"]))}
    raw["triggers"]["drift"].update({"weighting": "importance", "multivariate": {"enabled": True}})
    path.write_text(yaml.safe_dump(raw))
    try:
        batch = _write(_drifted(weeks[SEED_WEEKS]), champion["tmp"] / "mv.parquet")
        out = monitor(model=model, batch=batch)
        from typer.testing import CliRunner

        from cli.main import _register, app

        _register()
        human = CliRunner().invoke(app, ["monitor", model, "--batch", batch])
    finally:
        path.write_text(yaml.safe_dump(champion["spec"]))
    assert human.exit_code == 0, human.output
    assert "multivariate: AUC" in human.stdout and "-> DRIFT (separated by" in human.stdout
    assert "impact: " in human.stdout
    mv = out["drift"]["multivariate"]
    assert mv["significant"] is True and mv["auc"] > 0.8 and mv["p_value"] < 0.01
    assert mv["n_reference"] == 2000 and mv["n_batch"] == 336
    assert {name for name, _ in mv["top_features"]} & {"nswdemand", "nswprice"}
    assert any(r.startswith("multivariate drift: domain classifier AUC") for r in out["drift"]["reasons"])
    impact = out["drift"]["impact"]
    assert [i["impact"] for i in impact] == sorted((i["impact"] for i in impact), reverse=True)
    assert sum(i["importance"] for i in impact) == pytest.approx(1.0, abs=1e-3)

    p = wait_event(
        champion["api"], model, "evergreen.drift.detected", out["events"]["evergreen.drift.detected"]
    )
    assert p["weighting"] == "importance" and 0 < p["weighted_share"] <= 1
    assert p["multivariate"]["significant"] is True and p["multivariate"]["auc"] == mv["auc"]
    assert p["impact"] and [i["name"] for i in p["impact"]] == [i["name"] for i in impact if i["drifted"]]
    assert "multivariate drift" in p["summary"]
