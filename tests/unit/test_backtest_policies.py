"""Policy backtest: the policies file vocabulary, its errors, and merging a policy onto a spec."""

from __future__ import annotations

import pandas as pd
import pytest

from evergreen import backtest as bt
from evergreen import policy
from evergreen.spec import ModelSpec, parse_spec
from tests.support.builders import synthetic_stream
from tests.unit.backtest_synth import ROOT, SYNTH_SPEC, policies


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return parse_spec(SYNTH_SPEC)


@pytest.fixture(scope="module")
def stream() -> pd.DataFrame:
    return synthetic_stream()


# ---- policy vocabulary ----


def test_the_shipped_policies_file_is_valid_for_elec2(elec2_spec):
    pset = bt.load_policies(ROOT / "policies" / "elec2.yaml")
    names = [p.name for p in pset.policies]
    assert {"never", "weekly", "every-4", "performance", "drift-psi", "hybrid"} <= set(names)
    for p in pset.policies:
        bt.resolve_policy(p, elec2_spec)


def test_policy_errors_name_the_policy_and_the_key():
    bad = [
        {"name": "a", "trigger": {"drift": {"threshold": -1}}},
        {"name": "b", "window": {"kind": "rolling"}},
        {"name": "c", "trigger": "sometimes"},
        {"name": "d", "gate": {"tolerence": 0.1}},
        {"name": "e", "trigger": {"schedule": {"every": 0}}},
    ]
    with pytest.raises(bt.PolicyError) as err:
        bt.parse_policies(bad, source="p.yaml")
    msg = str(err.value)
    for where in (
        "policies[0] (a).trigger.drift.threshold",
        "policies[1] (b).window",
        "policies[2] (c).trigger",
        "policies[3] (d).gate.tolerence",
        "policies[4] (e).trigger.schedule.every",
    ):
        assert where in msg
    with pytest.raises(bt.PolicyError, match="unique"):
        bt.parse_policies([{"name": "x"}, {"name": "x"}])
    with pytest.raises(bt.PolicyError, match="expected a list"):
        bt.parse_policies("never")


def test_policy_files_errors(tmp_path):
    with pytest.raises(bt.PolicyError, match="not found"):
        bt.load_policies(tmp_path / "missing.yaml")
    f = tmp_path / "bad.yaml"
    f.write_text("policies: [name: x\n")
    with pytest.raises(bt.PolicyError, match="not valid YAML"):
        bt.load_policies(f)
    f.write_text("policies:\n  - {name: x, trigger: never}\ndrifts: ['2024-01-05', 9]\n")
    assert bt.load_policies(f).drifts == ["2024-01-05", 9]


def test_trigger_rules_merge_onto_the_spec(spec):
    p = policies(
        {"name": "d", "trigger": {"drift": {"threshold": 0.5}, "cooldown": None}, "window": {"kind": "all"}}
    )[0]
    rp = bt.resolve_policy(p, spec)
    assert rp.drift is not None and rp.drift.threshold == 0.5 and rp.drift.bins == 20  # bins from the spec
    assert rp.performance is None and rp.volume is None and rp.schedule is None
    assert rp.cooldown is None and rp.spec.training.window.kind == "all"
    assert rp.spec.gate.enabled and rp.gated

    from_spec = bt.resolve_policy(policies({"name": "s", "trigger": "spec", "gate": False})[0], spec)
    assert from_spec.drift is not None and from_spec.performance is not None and from_spec.volume is not None
    assert from_spec.performance_floor == 0.8 and not from_spec.gated
    assert "drift(psi>0.2" in from_spec.describe() and "volume" in from_spec.describe()

    off = bt.resolve_policy(
        policies({"name": "o", "trigger": {"from_spec": True, "drift": {"enabled": False}}})[0], spec
    )
    assert off.drift is None and off.performance is not None

    never = bt.resolve_policy(policies({"name": "n"})[0], spec)
    assert never.describe() == "never" and never.spec.training.window == spec.training.window


def test_performance_rule_needs_a_floor(spec):
    nofloor = spec.with_overrides({"gate.floor": None, "triggers.performance.floor": None})
    with pytest.raises(bt.PolicyError, match="needs `floor`"):
        bt.resolve_policy(policies({"name": "p", "trigger": {"performance": {}}})[0], nofloor)
    ok = bt.resolve_policy(
        policies({"name": "p", "trigger": {"performance": {"max_drop": 0.05}}})[0], nofloor
    )
    assert ok.performance_floor is None


def test_params_and_gate_overrides_reach_the_spec(spec):
    rp = bt.resolve_policy(
        policies({"name": "p", "params": {"n_estimators": 5}, "gate": {"tolerance": 0.0}})[0], spec
    )
    assert rp.spec.training.estimator.params["n_estimators"] == 5
    assert rp.spec.training.estimator.params["num_leaves"] == 7
    assert rp.spec.gate.tolerance == 0.0 and rp.spec.gate.floor == 0.6
    with pytest.raises(bt.PolicyError, match="policy 'w'"):
        bt.resolve_policy(policies({"name": "w", "params": {}, "gate": {"floor": 2.0}})[0], spec)


# ---- policy.py rule helpers ----


def test_policy_rule_helpers():
    assert policy.schedule_check(3, 3).retrain and not policy.schedule_check(2, 3).retrain
    assert policy.volume_check(50, 100, 0.5).retrain and not policy.volume_check(49, 100, 0.5).retrain
    both = policy.combine([policy.performance_check(True, "low"), policy.schedule_check(5, 4)])
    assert both.retrain and both.reason == "performance" and "also: schedule" in both.detail
    none = policy.combine([policy.drift_check(False, "calm")])
    assert not none.retrain and none.reason == "no-trigger"
    assert policy.combine([]).reason == "never"


def test_describe_says_above_the_ceiling_for_lower_is_better_metrics():
    """A regression model's performance rule fires when RMSE rises above its bound, and says so."""
    import yaml

    bike = parse_spec(yaml.safe_load((ROOT / "models" / "bike_sharing.yaml").read_text()))
    rp = bt.resolve_policy(policies({"name": "p", "trigger": {"performance": {"floor": 80.0}}})[0], bike)
    assert f"performance(rmse>80.0 x{rp.performance.consecutive})" in rp.describe()
