"""The estimated-performance trigger rule (evergreen.estimate_trigger) and its event payload and label."""

from __future__ import annotations

import numpy as np

from evergreen.estimate import Calibrator
from evergreen.estimate_trigger import payload, step
from evergreen.events import ESTIMATE_LABEL, estimate_labels
from evergreen.spec import EstimatedPerformanceTrigger

CAL = Calibrator(task="binary", x=[[0.0, 1.0]], y=[[0.0, 1.0]], rows=336, reference={"accuracy": 0.85})
rng = np.random.default_rng(0)
CONFIDENT = np.r_[rng.uniform(0.9, 1.0, 200), rng.uniform(0.0, 0.1, 200)]  # expected accuracy ~0.95
UNSURE = rng.uniform(0.45, 0.55, 400)  # expected accuracy ~0.5


def test_a_significantly_low_estimate_fires_after_k_batches():
    trig = EstimatedPerformanceTrigger(enabled=True, floor=0.7, consecutive=2)
    first = step(CAL, UNSURE, trig, batch_key="b1")
    assert first.batch_degraded and not first.degraded and first.streak == 1
    second = step(CAL, UNSURE, trig, prior=first.streak, prior_batch=first.last_batch, batch_key="b2")
    assert second.degraded and second.streak == 2
    assert any("floor 0.7" in r for r in second.reasons)
    ok = step(CAL, CONFIDENT, trig, prior=second.streak, prior_batch="b2", batch_key="b3")
    assert not ok.batch_degraded and not ok.degraded and ok.streak == 0


def test_the_same_batch_measured_twice_counts_once():
    trig = EstimatedPerformanceTrigger(enabled=True, floor=0.7, consecutive=2)
    first = step(CAL, UNSURE, trig, batch_key="b1")
    again = step(CAL, UNSURE, trig, prior=first.streak, prior_batch=first.last_batch, batch_key="b1")
    assert not again.counted and again.streak == 1 and not again.degraded


def test_max_drop_compares_the_upper_bound_with_the_holdout_metric():
    trig = EstimatedPerformanceTrigger(enabled=True, max_drop=0.1)
    assert step(CAL, UNSURE, trig).degraded  # ~0.5 + noise < 0.85 - 0.1
    assert not step(CAL, CONFIDENT, trig).degraded


def test_a_noisy_small_batch_is_not_called_degraded():
    """Three rows estimated at ~0.5: the bound is too wide to say 'below 0.6'."""
    trig = EstimatedPerformanceTrigger(enabled=True, floor=0.6)
    v = step(CAL, np.array([0.5, 0.52, 0.48]), trig)
    assert v.estimate.value is not None and v.estimate.value < 0.6 and not v.batch_degraded


def test_a_disabled_trigger_reports_but_never_fires():
    v = step(CAL, UNSURE, EstimatedPerformanceTrigger(enabled=False, floor=0.7))
    assert v.batch_degraded and not v.degraded


def test_payload_and_label():
    trig = EstimatedPerformanceTrigger(enabled=True, floor=0.7, metric="roc_auc")
    v = step(CAL.model_copy(update={"reference": {"roc_auc": 0.9}}), UNSURE, trig)
    p = payload(v, {"data_version": "dv1", "champion_version": "3"})
    assert p["metric"] == "roc_auc" and p["reference"] == 0.9 and p["data_version"] == "dv1"
    assert p["lower"] <= p["estimate"] <= p["upper"] and p["degraded"] is v.degraded
    assert estimate_labels(True) == {ESTIMATE_LABEL: "true"}
    assert ESTIMATE_LABEL == "evergreen.estimate-degraded"


def test_an_enabled_estimated_trigger_renders_an_automation_on_the_degraded_label():
    """deployments/render.py: expect performance.estimated, match the label, reason `estimated`, own priority."""
    import yaml

    from deployments import render_prefect_yaml
    from evergreen.spec import parse_spec
    from tests.support.builders import elec2_spec_dict

    raw = elec2_spec_dict()
    raw["triggers"]["estimated"] = {"enabled": True, "floor": 0.7, "priority": 2}
    doc = yaml.safe_load(render_prefect_yaml([parse_spec(raw)]))
    (dep,) = [d for d in doc["deployments"] if d["name"] == "elec2-p2"]
    (auto,) = dep["triggers"]
    assert auto["name"] == "elec2-retrain-on-estimated"
    assert auto["expect"] == ["evergreen.performance.estimated"]
    assert auto["match"] == {"prefect.resource.id": "evergreen.model.elec2", ESTIMATE_LABEL: "true"}
    assert auto["parameters"]["reason"] == "estimated"
    assert dep["work_pool"]["work_queue_name"] == "retrain-p2"
