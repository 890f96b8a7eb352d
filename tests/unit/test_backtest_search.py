"""Policy search: the accuracy-vs-CPU Pareto front, the grid, and `evergreen backtest-search` output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from evergreen.backtest import search
from tests.support.builders import synthetic_spec_dict, synthetic_stream
from tests.unit.backtest_synth import ROWS, WARMUP


def test_pareto_keeps_only_undominated_points_cheapest_first():
    pts = [("a", 0.80, 10.0), ("b", 0.78, 2.0), ("c", 0.77, 3.0), ("d", 0.80, 12.0), ("e", 0.70, 1.0)]
    assert search.pareto(pts) == ["e", "b", "a"]


def test_grid_is_the_product_of_its_parts_with_readable_names():
    grid = search.load_grid(None)
    names = [p.name for p in search.grid_policies(grid)]
    assert len(names) == len(grid.triggers) * len(grid.updates) * len(grid.gates) * len(grid.cooldowns)
    assert "weekly.u15-4W-r8-lr03.nogate" in names


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    models = tmp_path / "models"
    models.mkdir()
    (models / "synth.yaml").write_text(yaml.safe_dump(synthetic_spec_dict(), sort_keys=False))
    data = tmp_path / "synth.csv"
    synthetic_stream().to_csv(data, index=False)
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        yaml.safe_dump(
            {
                "triggers": {"weekly": {"schedule": {"every": 1}}},
                "updates": {"full": None, "u5": {"trees": 5, "window": "20D", "refit_every": 4}},
                "gates": [False],
            }
        )
    )
    monkeypatch.setenv("EVERGREEN_MODELS_DIR", str(models))
    monkeypatch.setenv("EVERGREEN_HOME", str(tmp_path / "home"))
    return {"data": data, "grid": grid, "root": tmp_path}


def _app() -> typer.Typer:
    from cli import search_cmd

    app = typer.Typer()

    @app.callback()
    def main() -> None:
        pass

    search_cmd.register(app)
    return app


def test_search_cli_prints_front_and_writes_the_recommended_spec_section(workspace):
    out = workspace["root"] / "rec.yaml"
    args = ["backtest-search", "synth", "--grid", str(workspace["grid"]), "--data", str(workspace["data"])]
    args += ["--batch-rows", str(ROWS), "--warmup", str(WARMUP), "--max-cpu", "0.9", "--out", str(out)]
    res = CliRunner().invoke(_app(), [*args, "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    names = {p["policy"] for p in r["policies"]}
    assert {"baseline-every-batch", "baseline-every-4", "weekly.full.nogate", "weekly.u5.nogate"} <= names
    assert r["pareto_front"] and set(r["pareto_front"]) <= names
    # the update policy is cheaper than the weekly full fit it continues
    by = {p["policy"]: p for p in r["policies"]}
    assert by["weekly.u5.nogate"]["cpu_seconds"] < by["weekly.full.nogate"]["cpu_seconds"]
    assert r["recommended"] in r["pareto_front"]
    assert "update" in r["spec_section"]["training"]
    assert out.read_text().startswith("# recommended by: evergreen ")
    text = CliRunner().invoke(_app(), args)
    assert text.exit_code == 0, text.output
    assert "Pareto front (accuracy vs CPU" in text.stdout and "(baseline)" in text.stdout


def test_search_cli_bad_grid_is_one_error_line(workspace):
    bad = workspace["root"] / "bad.yaml"
    bad.write_text("triggers: {}\n")
    res = CliRunner().invoke(_app(), ["backtest-search", "synth", "--grid", str(bad), "--json"])
    assert res.exit_code == 1
