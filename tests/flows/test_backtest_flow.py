"""The backtest flow and `evergreen backtest` in-process, against Prefect's test harness.

Synthetic stream (tests/unit/test_backtest.py) with an abrupt drift at batch 8; a private models dir
and EVERGREEN_HOME per test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import typer
import yaml
from typer.testing import CliRunner

from tests.support.builders import synthetic_spec_dict, synthetic_stream
from tests.unit.backtest_synth import DRIFT_AT, N_BATCHES, ROWS, WARMUP

SYNTH_SPEC = synthetic_spec_dict()

POLICIES = {
    "policies": [
        {"name": "never", "trigger": "never", "gate": False},
        {"name": "every-3", "trigger": {"schedule": {"every": 3}}, "gate": False},
        {"name": "drift", "trigger": {"drift": {}}},
        {"name": "hybrid", "trigger": {"performance": {}, "drift": {}, "schedule": {"every": 4}}},
    ],
    "drifts": [DRIFT_AT],
}


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    models = tmp_path / "models"
    models.mkdir()
    (models / "synth.yaml").write_text(yaml.safe_dump(SYNTH_SPEC, sort_keys=False))
    data = tmp_path / "synth.csv"
    synthetic_stream().to_csv(data, index=False)
    policies = tmp_path / "policies.yaml"
    policies.write_text(yaml.safe_dump(POLICIES, sort_keys=False))
    monkeypatch.setenv("EVERGREEN_MODELS_DIR", str(models))
    monkeypatch.setenv("EVERGREEN_HOME", str(tmp_path / "home"))
    return {"root": tmp_path, "data": data, "policies": policies}


def cli_app() -> typer.Typer:
    from cli import backtest_cmd

    app = typer.Typer()

    @app.callback()
    def main() -> None:  # a group, so the command is called by name as in `evergreen backtest`
        pass

    backtest_cmd.register(app)
    return app


def latest_artifact(key: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    assert found, f"no artifact {key!r}"
    return found[0]


def test_cli_json_matches_the_flow_artifact(prefect_harness, workspace):
    out_dir = workspace["root"] / "out"
    args = [
        "backtest",
        "synth",
        "--policies",
        str(workspace["policies"]),
        "--data",
        str(workspace["data"]),
        "--batch-rows",
        str(ROWS),
        "--warmup",
        str(WARMUP),
        "--out",
        str(out_dir),
        "--json",
    ]
    result = CliRunner().invoke(cli_app(), args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)

    table = latest_artifact("backtest-synth")
    assert table.type == "table"
    assert json.loads(table.data) == report["table"]
    assert [r["policy"] for r in report["table"]] == sorted(
        (p["name"] for p in report["policies"]),
        key=lambda n: next(r["rank"] for r in report["table"] if r["policy"] == n),
    )
    markdown = latest_artifact("backtest-synth-report")
    assert markdown.type == "markdown" and f"**Best:** {report['best']}" in markdown.data

    # the drift marked in the policies file is scored; the drift policy catches it within 2 batches
    drift = next(p for p in report["policies"] if p["name"] == "drift")
    assert report["marked_drifts"] == [DRIFT_AT]
    assert drift["detection_delays"][0] is not None and drift["detection_delays"][0] <= 2
    assert [b["batch"] for b in drift["batches"] if b["retrain"]][0] >= DRIFT_AT

    # files: per-batch CSV (one row per policy and scored batch), summary CSV, JSON, HTML and PNG
    files = report["files"]
    batches = pd.read_csv(files["batches_csv"])
    # the every-batch and every-4 baselines run beside the file's policies, marked as baselines
    assert len(batches) == (len(POLICIES["policies"]) + 2) * (N_BATCHES - WARMUP)
    base = {r["policy"]: r for r in report["table"] if r["baseline"]}
    assert sorted(base) == ["baseline-every-4", "baseline-every-batch"]
    assert base["baseline-every-batch"]["cpu_vs_every_batch"] == 1.0
    assert pd.read_csv(files["summary_csv"])["policy"].tolist() == [r["policy"] for r in report["table"]]
    assert json.loads(Path(files["json"]).read_text())["best"] == report["best"]
    assert Path(files["html"]).stat().st_size > 10_000
    assert Path(files["png"]).read_bytes()[:4] == b"\x89PNG"


def test_flow_runs_each_policy_as_a_task_and_defaults_to_the_reports_dir(prefect_harness, workspace):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.backtest import backtest

    state = backtest(
        model="synth",
        policies_file=str(workspace["policies"]),
        data=str(workspace["data"]),
        batch_rows=ROWS,
        warmup=WARMUP,
        rank_by="accuracy",
        return_state=True,
    )
    assert state.is_completed()
    result = state.result()
    assert result["rank_by"] == "accuracy"
    assert Path(result["files"]["html"]).parent == workspace["root"] / "home" / "reports" / "backtest"
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        )
    replays = sorted(r.name for r in runs if r.name.startswith("replay-"))
    names = [p["name"] for p in POLICIES["policies"]] + ["baseline-every-batch", "baseline-every-4"]
    assert replays == sorted(f"replay-{n}" for n in names)
    assert all(r.state is not None and r.state.is_completed() for r in runs)


def test_cli_reports_a_bad_policies_file_by_key(prefect_harness, workspace):
    bad = workspace["root"] / "bad.yaml"
    bad.write_text(yaml.safe_dump([{"name": "oops", "trigger": {"drift": {"threshold": 0}}}]))
    result = CliRunner().invoke(
        cli_app(), ["backtest", "synth", "--policies", str(bad), "--data", str(workspace["data"]), "--json"]
    )
    assert result.exit_code == 1
    err = json.loads(result.stdout)
    assert err["status"] == "error" and "policies[0] (oops).trigger.drift.threshold" in err["error"]
