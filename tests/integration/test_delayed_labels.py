"""Delayed labels and per-dataset versions on real parts (issue 10 items 2 and 5): DVC registry + remote,
GX, MLflow server, Prefect server; flows in-process, one CLI call for the refused labels file.

An unlabelled batch followed by its labels ends in a model trained on those labels, and the model's
`data_version` resolves to exactly the rows it trained on; another model's ingest in between leaves this
model's data version alone.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from adapters import audit_log
from adapters import dvc_registry as data_registry
from adapters import mlflow_registry as model_registry
from evergreen.audit import Action
from evergreen.settings import get_settings
from evergreen.training import split
from tests.support.builders import ROOT, elec2_spec_dict, elec2_weeks, write_batch, write_spec
from tests.support.prefect_events import wait_events

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture(scope="module")
def weeks() -> list[pd.DataFrame]:
    """Four Elec2 weeks with a row id (the delayed-labels key)."""
    frame = pd.concat(elec2_weeks()[:4], ignore_index=True)
    frame.insert(0, "row_id", [f"r{i}" for i in range(len(frame))])
    return [frame.iloc[i * 336 : (i + 1) * 336].reset_index(drop=True) for i in range(4)]


def _spec(name: str, path: str, delayed: bool) -> dict:
    raw = elec2_spec_dict(name)
    raw["data"]["path"] = path
    if delayed:
        raw["data"]["delayed_labels"] = {"id_column": "row_id"}
    raw["training"]["refit"] = False
    raw["training"]["min_train_rows"] = 300
    raw["training"]["window"] = {"kind": "all"}
    raw["gate"]["n_bootstrap"] = 200
    return raw


def test_unlabelled_batch_then_labels_trains_on_exactly_those_rows(
    prefect_server, mlflow_server, stack_env, tmp_path, monkeypatch, weeks
):
    from flows.ingest import ingest
    from flows.labels import ingest_labels
    from flows.monitor import monitor
    from flows.retrain import retrain

    monkeypatch.chdir(ROOT)
    stack_env(prefect=prefect_server, mlflow=mlflow_server, home=tmp_path / "home")
    model = f"late-{tmp_path.name[-6:].lower().replace('_', '-')}"
    other = f"other-{tmp_path.name[-6:].lower().replace('_', '-')}"
    models = tmp_path / "models"
    write_spec(models, _spec(model, model, delayed=True))
    write_spec(models, _spec(other, other, delayed=False))
    monkeypatch.setenv("EVERGREEN_MODELS_DIR", str(models))
    settings = get_settings()

    # Two labelled weeks, then one week whose labels come later: validated (GX) and ingested unlabelled.
    ingest(model=model, path=write_batch(pd.concat(weeks[:2]), tmp_path / "w0-1.csv"))
    late = weeks[2].assign(**{"class": None})
    pending = ingest(model=model, path=write_batch(late, tmp_path / "w2-unlabelled.csv"))
    assert pending["status"] == "ingested" and pending["rows"] == 336
    r1 = retrain(model=model, reason="manual")
    cl = model_registry.client(settings)
    t1 = cl.get_model_version(model, r1["version"]).tags
    # the hold-out is the most recent LABELLED week, not the unlabelled one
    assert t1["holdout_end"] == str(weeks[1]["timestamp"].max())

    # monitoring: drift on the unlabelled rows, no performance without labels
    watched = monitor(model=model, data_rev=pending["data_rev"])
    assert watched["selection"] == "added-at-rev" and watched["n_rows"] == 336
    assert watched["labelled_rows"] == 0 and watched["performance"] is None and watched["drift"] is not None

    labels = weeks[2][["row_id", "class"]]
    done = ingest_labels(model=model, path=write_batch(labels, tmp_path / "w2-labels.csv"))
    assert done["status"] == "ingested" and done["labels"] == 336
    assert done["labelled_rows"] == 1008 and done["unlabelled_rows"] == 0
    # another model's ingest moves the registry HEAD, not this model's data version
    ingest(model=other, path=write_batch(weeks[3].drop(columns="row_id"), tmp_path / "other.csv"))
    assert data_registry.current_version(settings, model).id == done["data_version"]

    r2 = retrain(model=model, reason="manual", force=True)
    assert r2["data_version"] == done["data_version"]
    tags = cl.get_model_version(model, r2["version"]).tags
    assert tags["data_version"] == done["data_version"]
    frame, version = data_registry.read_dataset(settings, model, tags["data_rev"])
    assert version.id == tags["data_version"] and frame["class"].notna().all()
    sp = split(frame, model_registry_spec(settings, r2["run_id"]))
    assert data_registry.frame_md5(sp.train) == tags["train_rows_md5"]
    assert tags["holdout_end"] == str(weeks[2]["timestamp"].max())  # trained and judged on the late labels
    pd.testing.assert_series_equal(
        sp.holdout["class"].reset_index(drop=True),
        weeks[2]["class"].reset_index(drop=True),
        check_names=False,
    )

    # ... and performance once the labels are in: the rows that labels commit labelled
    scored = monitor(model=model, data_rev=done["data_rev"])
    assert scored["selection"] == "labelled-at-rev" and scored["labelled_rows"] == 336
    assert scored["performance"] is not None

    (event,) = wait_events(prefect_server.api_url, model, ["evergreen.labels.ingested"], 1)
    assert event["payload"]["data_version"] == done["data_version"] and event["payload"]["labels"] == 336
    entries = [
        e for e in audit_log.read(settings, model, action=Action.INGEST) if e.evidence.get("kind") == "labels"
    ]
    assert [e.versions["data_version"] for e in entries] == [done["data_version"]]

    # labels for unknown ids: one error line, exit 2, the file quarantined, no new version
    bad = write_batch(pd.DataFrame({"row_id": ["r1", "nope"], "class": ["UP", "UP"]}), tmp_path / "bad.csv")
    out = subprocess.run(
        [sys.executable, "-c", "from cli.main import main; main()", "ingest-labels", model, bad],
        cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert out.returncode == 2 and len(errors) == 1 and "unknown row_id" in errors[0], out.stderr
    assert "Traceback" not in out.stderr and not os.path.exists(bad)
    assert list((settings.quarantine_dir / model).glob("*bad.csv.report.json"))
    assert data_registry.current_version(settings, model).id == done["data_version"]


def model_registry_spec(settings, run_id: str):
    """The spec the retrain ran with (logged as an artifact of its run)."""
    import yaml

    from evergreen.spec import parse_spec

    return parse_spec(yaml.safe_load(model_registry.load_artifact_text(settings, run_id, "spec.yaml")))
