"""prefect.yaml is rendered from models/*.yaml: the committed file is the render, one set per model."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from deployments import (
    deployment_names,
    load_specs,
    render_models_dir,
    render_prefect_yaml,
    retrain_deployments,
    work_queues,
)
from evergreen.spec import SpecError, parse_spec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def raw() -> dict:
    return yaml.safe_load((ROOT / "models" / "elec2.yaml").read_text())


def _deployments(text: str) -> dict[str, dict]:
    """{'retrain/elec2': deployment, ...} from a rendered prefect.yaml."""
    doc = yaml.safe_load(text)
    flow = {"flows/retrain.py:retrain": "retrain", "flows/monitor.py:monitor": "monitor"}
    return {f"{flow.get(d['entrypoint'], 'ingest')}/{d['name']}": d for d in doc["deployments"]}


def test_committed_prefect_yaml_is_the_render_of_the_specs():
    """Fails when prefect.yaml was edited by hand or a spec changed without re-rendering."""
    rendered = render_models_dir(ROOT / "models")
    assert (ROOT / "prefect.yaml").read_text() == rendered, (
        "prefect.yaml is stale: run `evergreen deployments render` (make deployments) and commit it"
    )


def test_elec2_deployments_as_designed(elec2_spec):
    text = render_prefect_yaml([elec2_spec])
    doc = yaml.safe_load(text)
    assert doc["name"] == "evergreen" and "pull" not in doc
    assert "No `pull:` section on purpose" in text
    deps = _deployments(text)
    assert list(deps) == ["retrain/elec2", "retrain/elec2-p5", "monitor/elec2", "ingest/elec2"]
    assert list(deps) == deployment_names([elec2_spec])
    queues = {}
    for name, d in deps.items():
        queues[name] = d["work_pool"].pop("work_queue_name", None)  # no queue: the pool's default queue
        assert d["work_pool"] == {"name": "evergreen-pool", "job_variables": {}}
        assert d["parameters"] == {"model": "elec2"}
    # event-driven retrains (and ad hoc runs) on the most urgent queue, the routine cron on the last
    assert queues == {
        "retrain/elec2": "retrain-p1",
        "retrain/elec2-p5": "retrain-p5",
        "monitor/elec2": None,
        "ingest/elec2": None,
    }
    retrain, scheduled, monitor = deps["retrain/elec2"], deps["retrain/elec2-p5"], deps["monitor/elec2"]
    assert "schedules" not in retrain and "triggers" not in scheduled
    assert scheduled["entrypoint"] == retrain["entrypoint"] == "flows/retrain.py:retrain"
    assert scheduled["concurrency_limit"] == retrain["concurrency_limit"]
    # the spec's schedule is the retrain cron; monitor.schedule the monitor's
    (sched,) = scheduled["schedules"]
    assert (sched["cron"], sched["timezone"]) == (elec2_spec.schedule.cron, elec2_spec.schedule.timezone)
    assert sched["parameters"] == {"model": "elec2", "reason": "schedule"}
    assert [s["cron"] for s in monitor["schedules"]] == ["0 6 * * *"]
    assert retrain["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
    triggers = {t["name"]: t for t in retrain["triggers"]}
    assert list(triggers) == [
        "elec2-retrain-on-drift",
        "elec2-retrain-on-performance",
        "elec2-retrain-on-volume",
    ]
    for reason, t in zip(("drift", "performance", "volume"), triggers.values(), strict=True):
        assert t["match"]["prefect.resource.id"] == "evergreen.model.elec2"
        assert t["for_each"] == ["prefect.resource.id"] and t["within"] == 600 and t["posture"] == "Reactive"
        assert t["parameters"] == {
            "model": "{{ event.resource.name }}",
            "reason": reason,
            "trigger_event_id": "{{ event.id | string }}",
        }
    assert triggers["elec2-retrain-on-volume"]["match"]["evergreen.volume-threshold-met"] == "true"
    assert triggers["elec2-retrain-on-volume"]["expect"] == ["evergreen.data.ingested"]
    (on_ingest,) = monitor["triggers"]
    assert on_ingest["expect"] == ["evergreen.data.ingested"] and on_ingest["within"] == 0
    assert "for_each" not in on_ingest
    assert on_ingest["parameters"]["data_rev"] == "{{ event.payload.data_rev | default('') }}"
    assert "triggers" not in deps["ingest/elec2"] and "schedules" not in deps["ingest/elec2"]


def test_a_second_spec_file_renders_a_second_set_matching_only_its_model(tmp_path, raw):
    (tmp_path / "elec2.yaml").write_text(yaml.safe_dump(raw))
    other = copy.deepcopy(raw)
    other["name"] = "prices"
    other["schedule"] = {"cron": "*/30 * * * *", "timezone": "UTC"}
    other["triggers"]["volume"] = {"enabled": False}
    del other["monitor"]
    (tmp_path / "prices.yaml").write_text(yaml.safe_dump(other))
    specs = load_specs(tmp_path)
    assert [s.name for s in specs] == ["elec2", "prices"]
    deps = _deployments(render_models_dir(tmp_path))
    assert list(deps) == [
        f"{k}/{m}{suffix}"
        for m in ("elec2", "prices")
        for k, suffix in (("retrain", ""), ("retrain", "-p5"), ("monitor", ""), ("ingest", ""))
    ]
    for name, d in deps.items():
        model = d["parameters"]["model"]
        assert name.split("/")[1] in (model, f"{model}-p5")
        for t in d.get("triggers", []):
            # every automation of a model reacts only to that model's own resource
            assert t["name"].startswith(f"{model}-")
            assert t["match"]["prefect.resource.id"] == f"evergreen.model.{model}"
            assert t["parameters"].get("model", "{{ event.resource.name }}") == "{{ event.resource.name }}"
    assert [s["cron"] for s in deps["retrain/prices-p5"]["schedules"]] == ["*/30 * * * *"]
    assert [t["name"] for t in deps["retrain/prices"]["triggers"]] == [
        "prices-retrain-on-drift",
        "prices-retrain-on-performance",
    ]
    assert "schedules" not in deps["monitor/prices"]  # no monitor.schedule: after every ingest only
    assert len(deps["retrain/elec2"]["triggers"]) == 3


def test_disabled_triggers_and_no_schedule(raw):
    raw["triggers"] = {k: {"enabled": False} for k in ("drift", "performance", "volume")}
    del raw["schedule"]
    (retrain, monitor, _) = yaml.safe_load(render_prefect_yaml([parse_spec(raw)]))["deployments"]
    assert "triggers" not in retrain and "schedules" not in retrain
    assert retrain["description"] == "Retrain elec2 ad hoc (priority 1, queue retrain-p1)."
    assert [t["name"] for t in monitor["triggers"]] == ["elec2-monitor-on-ingest"]


def test_work_pool_override_and_duplicate_names(elec2_spec):
    doc = yaml.safe_load(render_prefect_yaml([elec2_spec], work_pool="pool-x"))
    assert {d["work_pool"]["name"] for d in doc["deployments"]} == {"pool-x"}
    with pytest.raises(SpecError, match="share the model name"):
        render_prefect_yaml([elec2_spec, elec2_spec])


def test_empty_models_dir(tmp_path):
    with pytest.raises(SpecError, match="no model specs"):
        load_specs(tmp_path)


def test_cli_render_and_check(tmp_path):
    from typer.testing import CliRunner

    from cli.main import _register, app

    _register()
    runner = CliRunner()
    out = tmp_path / "prefect.yaml"
    args = ["deployments", "render", "--models-dir", str(ROOT / "models"), "--output", str(out)]
    stale = runner.invoke(app, [*args, "--check"])
    assert stale.exit_code == 1 and "missing" in stale.output
    assert runner.invoke(app, args).exit_code == 0
    assert out.read_text() == (ROOT / "prefect.yaml").read_text()
    assert runner.invoke(app, [*args, "--check"]).exit_code == 0
    out.write_text(out.read_text().replace("within: 600", "within: 60"))
    stale = runner.invoke(app, [*args, "--check"])
    assert stale.exit_code == 1
    (line,) = [ln for ln in stale.output.splitlines() if ln.startswith("error:")]
    assert "stale" in line and "evergreen deployments render" in line


def test_shipped_specs_automations_match_only_their_own_model():
    """models/*.yaml side by side: each automation of the committed file names one model's resource."""
    doc = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    models = {s.name for s in load_specs(ROOT / "models")}
    assert len(models) >= 2
    seen: dict[str, set[str]] = {m: set() for m in models}
    for d in doc["deployments"]:
        model = d["parameters"]["model"]
        for t in d.get("triggers", []):
            assert t["match"]["prefect.resource.id"] == f"evergreen.model.{model}", t
            assert "*" not in t["match"]["prefect.resource.id"]
            seen[model].add(t["expect"][0])
    assert all("evergreen.data.ingested" in evs for evs in seen.values()), seen


def test_each_trigger_priority_gets_its_own_queue(raw):
    raw["triggers"]["performance"]["priority"] = 1
    raw["triggers"]["drift"]["priority"] = 2
    raw["triggers"]["volume"]["priority"] = 3
    raw["schedule"]["priority"] = 5
    spec = parse_spec(raw)
    assert retrain_deployments(spec) == {1: "elec2", 2: "elec2-p2", 3: "elec2-p3", 5: "elec2-p5"}
    deps = _deployments(render_prefect_yaml([spec]))
    got = {
        name: (d["work_pool"]["work_queue_name"], [t["parameters"]["reason"] for t in d.get("triggers", [])])
        for name, d in deps.items()
        if name.startswith("retrain/")
    }
    assert got == {
        "retrain/elec2": ("retrain-p1", ["performance"]),
        "retrain/elec2-p2": ("retrain-p2", ["drift"]),
        "retrain/elec2-p3": ("retrain-p3", ["volume"]),
        "retrain/elec2-p5": ("retrain-p5", []),
    }
    assert "ad hoc" in deps["retrain/elec2"]["description"]
    assert "ad hoc" not in deps["retrain/elec2-p5"]["description"]
    assert [s["slug"] for s in deps["retrain/elec2-p5"]["schedules"]] == ["elec2-retrain"]


def test_schedule_as_urgent_as_the_triggers_shares_their_deployment(raw):
    raw["schedule"]["priority"] = 1
    deps = _deployments(render_prefect_yaml([parse_spec(raw)]))
    assert [n for n in deps if n.startswith("retrain/")] == ["retrain/elec2"]
    assert len(deps["retrain/elec2"]["schedules"]) == 1 and len(deps["retrain/elec2"]["triggers"]) == 3


@pytest.mark.parametrize("where", ["drift", "schedule"])
@pytest.mark.parametrize("bad", [0, 6, "high"])
def test_priority_outside_1_to_5_is_refused_naming_the_key(raw, where, bad):
    (raw["schedule"] if where == "schedule" else raw["triggers"]["drift"])["priority"] = bad
    with pytest.raises(SpecError, match="priority"):
        parse_spec(raw)


def test_work_queues_default_first_then_retrain_p1_to_p5():
    queues = work_queues()
    assert queues[0] == ("default", 1)
    assert [q for q, _ in queues[1:]] == [f"retrain-p{p}" for p in range(1, 6)]
    assert [p for _, p in queues] == sorted(p for _, p in queues) == list(range(1, 7))
