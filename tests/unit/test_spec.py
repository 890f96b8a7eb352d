from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from evergreen.spec import SpecError, load_spec, load_spec_file, parse_spec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def raw() -> dict:
    return yaml.safe_load((ROOT / "models" / "elec2.yaml").read_text())


def test_demo_spec_loads(elec2_spec):
    assert elec2_spec.name == "elec2"
    assert elec2_spec.categorical == ["day"]
    assert "nswdemand" in elec2_spec.numeric
    assert elec2_spec.columns[0] == "timestamp" and elec2_spec.columns[-1] == "class"


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("metric",), "f1", "metric:"),
        (("gate", "floor"), 1.5, "gate.floor"),
        (("training", "window"), {"kind": "rolling"}, "training.window"),
        (("training", "window"), {"kind": "decay", "half_life": "soon"}, "training.window.half_life"),
        (("training", "holdout"), {"period": "7D", "rows": 10}, "training.holdout"),
        (("triggers", "cooldown"), "-1h", "triggers.cooldown"),
        (("schedule", "cron"), "every monday", "schedule.cron"),
        (("schedule", "timezone"), "Mars/Olympus", "schedule.timezone"),
        (("monitor", "schedule"), {"cron": "daily"}, "monitor.schedule.cron"),
        (("monitor", "every"), "1D", "monitor.every"),
        (("gate", "tolerence"), 0.1, "gate.tolerence"),
        (("data", "path"), "../escape", "data.path"),
    ],
)
def test_invalid_spec_names_key(raw, path, value, expected):
    bad = copy.deepcopy(raw)
    node = bad
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    with pytest.raises(SpecError) as exc:
        parse_spec(bad, source="models/elec2.yaml")
    assert expected in str(exc.value)
    assert "models/elec2.yaml" in str(exc.value)


def test_feature_errors_name_index(raw):
    bad = copy.deepcopy(raw)
    bad["features"][1]["categories"] = [1, 2]  # numeric feature with categories
    with pytest.raises(SpecError, match=r"features\.1"):
        parse_spec(bad)


def test_duplicate_and_target_as_feature(raw):
    bad = copy.deepcopy(raw)
    bad["features"].append({"name": "class", "type": "categorical"})
    with pytest.raises(SpecError, match="data.target 'class' is also listed as a feature"):
        parse_spec(bad)


def test_missing_file_and_name_mismatch(tmp_path, raw):
    with pytest.raises(SpecError, match="not found"):
        load_spec("nope", tmp_path)
    raw["name"] = "other"
    (tmp_path / "elec2.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError, match="file name"):
        load_spec("elec2", tmp_path)
    (tmp_path / "broken.yaml").write_text("name: [unclosed")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec_file(tmp_path / "broken.yaml")


def test_overrides(elec2_spec):
    s = elec2_spec.with_overrides({"training.window": {"kind": "all"}, "gate.tolerance": 0.0})
    assert s.training.window.kind == "all" and s.gate.tolerance == 0.0
    with pytest.raises(SpecError, match="gate.floor"):
        elec2_spec.with_overrides({"gate.floor": 7})


def test_monitor_schedule_is_optional(raw):
    schedule = parse_spec(raw).monitor.schedule
    assert schedule is not None and schedule.cron == "0 6 * * *"
    del raw["monitor"]
    assert parse_spec(raw).monitor.schedule is None
