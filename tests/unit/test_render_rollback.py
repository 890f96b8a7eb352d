"""The watch's rollback deployment and automation are rendered only for specs with promotion.watch_batches."""

from __future__ import annotations

from pathlib import Path

import yaml

from deployments import deployment_names, render_prefect_yaml
from evergreen.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]


def _spec(watch: int):
    raw = yaml.safe_load((ROOT / "models" / "elec2.yaml").read_text())
    raw["promotion"] = {"watch_batches": watch, "alpha": 0.01}
    return parse_spec(raw)


def test_a_watched_model_gets_a_rollback_deployment_triggered_by_regression():
    spec = _spec(3)
    doc = yaml.safe_load(render_prefect_yaml([spec]))
    rollback = [d for d in doc["deployments"] if d["entrypoint"] == "flows/rollback.py:rollback"]
    assert [d["name"] for d in rollback] == ["elec2"]
    assert "rollback/elec2" in deployment_names([spec])
    dep = rollback[0]
    assert dep["parameters"] == {"model": "elec2"}
    assert dep["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
    (trigger,) = dep["triggers"]
    assert trigger["name"] == "elec2-rollback-on-regression"
    assert trigger["expect"] == ["evergreen.champion.regressed"]
    assert trigger["match"] == {"prefect.resource.id": "evergreen.model.elec2"}
    assert trigger["for_each"] == ["prefect.resource.id"]
    # each template is one whole {{ }} (Prefect keeps its type; DESIGN.md) over keys the payload always has
    assert trigger["parameters"] == {
        "model": "{{ event.resource.name }}",
        "to_version": "{{ event.payload.previous_version }}",
        "from_version": "{{ event.payload.version }}",
        "reason": "{{ event.payload.reason }}",
        "trigger_event_id": "{{ event.id | string }}",
    }


def test_no_watch_no_rollback_deployment():
    spec = _spec(0)
    text = render_prefect_yaml([spec])
    assert "flows/rollback.py" not in text and "rollback/elec2" not in deployment_names([spec])
