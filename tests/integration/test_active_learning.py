"""Active learning round trip on real parts (issue 12): DVC registry + remote, GX, MLflow server, Prefect server.

Labelled weeks -> champion; an unlabelled week ingested (delayed labels) -> request-labels exports the
10% most uncertain rows as a queue file (+ artifacts, evergreen.labels.requested) -> the labeller fills the
queue -> ingest-labels commits those labels -> a retrain trains and is judged on them.
"""

from __future__ import annotations

import pandas as pd
import pytest

from adapters import mlflow_registry as model_registry
from evergreen.settings import get_settings
from tests.support.builders import ROOT, elec2_spec_dict, elec2_weeks, write_batch, write_spec
from tests.support.prefect_events import wait_events

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_queue_exported_labels_ingested_and_retrained_on(
    prefect_server, mlflow_server, stack_env, tmp_path, monkeypatch
):
    from flows.active import request_labels
    from flows.ingest import ingest
    from flows.labels import ingest_labels
    from flows.retrain import retrain

    monkeypatch.chdir(ROOT)
    stack_env(prefect=prefect_server, mlflow=mlflow_server, home=tmp_path / "home")
    model = f"active-{tmp_path.name[-6:].lower().replace('_', '-')}"
    raw = elec2_spec_dict(model)
    raw["data"]["path"] = model
    # the budget lives in the spec: 10% of a batch, at most 40 rows a week over all requests
    raw["data"]["delayed_labels"] = {
        "id_column": "row_id",
        "request": {"strategy": "margin", "share": 0.1, "rows_per_period": 40, "period": "7D"},
    }
    raw["training"].update(refit=False, min_train_rows=300, window={"kind": "all"}, holdout={"period": "14D"})
    raw["gate"]["n_bootstrap"] = 200
    models = tmp_path / "models"
    write_spec(models, raw)
    monkeypatch.setenv("EVERGREEN_MODELS_DIR", str(models))
    frame = pd.concat(elec2_weeks()[:4], ignore_index=True)
    frame.insert(0, "row_id", [f"r{i}" for i in range(len(frame))])
    labelled, late = frame.iloc[: 3 * 336], frame.iloc[3 * 336 :]

    ingest(model=model, path=write_batch(labelled, tmp_path / "w0-2.csv"))
    r1 = retrain(model=model, reason="manual")
    assert r1["status"] == "promoted", r1
    unlabelled = write_batch(late.assign(**{"class": None}), tmp_path / "w3-unlabelled.csv")
    assert ingest(model=model, path=unlabelled)["status"] == "ingested"

    asked = request_labels(model=model, path=unlabelled, out_dir=str(tmp_path / "q"))
    queue = pd.read_csv(asked["queue"])
    assert asked["requested"] == len(queue) == 33 and asked["unlabelled_rows"] == 336
    assert asked["champion_version"] == r1["version"] and queue["class"].isna().all()
    assert set(queue["row_id"]) <= set(late["row_id"]) and queue["uncertainty"].min() > 0
    (event,) = wait_events(prefect_server.api_url, model, ["evergreen.labels.requested"], 1)
    assert sorted(event["payload"]["ids"]) == sorted(queue["row_id"])
    # A second request in the same week gets only what the period's 40 rows have left (the ledger counts 33).
    again = request_labels(model=model, path=unlabelled, strategy="random", out_dir=str(tmp_path / "q2"))
    assert again["requested"] == 7 and again["requested_in_period"] == 40, again
    assert (
        request_labels(model=model, path=unlabelled, budget=5, out_dir=str(tmp_path / "q3"))["requested"] == 0
    )

    # The labeller fills the target column and returns the queue through the delayed-labels path.
    truth = late.set_index("row_id")["class"]
    answered = queue.assign(**{"class": queue["row_id"].map(truth)})[["row_id", "class"]]
    done = ingest_labels(model=model, path=write_batch(answered, tmp_path / "answers.csv"))
    assert done["status"] == "ingested" and done["labels"] == 33 and done["unlabelled_rows"] == 336 - 33

    r2 = retrain(model=model, reason="manual", force=True)
    assert r2["data_version"] == done["data_version"] and r2["version"] == "2", r2
    tags = model_registry.client(get_settings()).get_model_version(model, r2["version"]).tags
    # judged on the rows whose labels were bought: the hold-out now ends at the last of them
    late_times = late.set_index("row_id")["timestamp"]
    assert tags["holdout_end"] == str(pd.Timestamp(late_times[queue["row_id"]].max()))
