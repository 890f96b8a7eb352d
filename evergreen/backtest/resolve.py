"""A policy merged onto a model spec: every number a replay runs with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from evergreen.backtest.policies import Policy, PolicyError
from evergreen.spec import (
    DriftTrigger,
    EstimatedPerformanceTrigger,
    ModelSpec,
    PerformanceTrigger,
    SpecError,
    VolumeTrigger,
    check_estimated,
)


@dataclass(frozen=True)
class ResolvedPolicy:
    """A policy merged onto a model spec: every number it runs with."""

    policy: Policy
    spec: ModelSpec
    schedule: int | None
    drift: DriftTrigger | None
    performance: PerformanceTrigger | None
    performance_floor: float | None
    volume: VolumeTrigger | None
    cooldown: str | None
    estimated: EstimatedPerformanceTrigger | None = None

    @property
    def name(self) -> str:
        return self.policy.name

    @property
    def gated(self) -> bool:
        return self.spec.gate.enabled

    def describe(self) -> str:
        """A one-line summary of the trigger, e.g. 'drift(psi>0.2) | schedule(every 8)'."""
        parts = []
        if self.performance:
            p = self.performance
            worse = "<" if self.spec.higher_is_better else ">"  # the floor is a ceiling for rmse, logloss...
            bits = [
                f"{self.spec.metric}{worse}{self.performance_floor}"
                if self.performance_floor is not None
                else ""
            ]
            if p.max_drop is not None:
                bits.append(f"drop>{p.max_drop}")
            parts.append(f"performance({' or '.join(b for b in bits if b)} x{p.consecutive})")
        if self.drift:
            d, weighted = self.drift, " by importance" if self.drift.weighting == "importance" else ""
            parts.append(f"drift({d.statistic}>{d.threshold}, share {d.share}{weighted})")
            if d.multivariate.enabled:
                parts.append(f"multivariate(p<{d.multivariate.alpha}, auc>={d.multivariate.min_auc})")
        if self.volume:
            parts.append(f"volume(+{self.volume.min_new_share:.0%})")
        if self.schedule:
            parts.append(f"schedule(every {self.schedule})")
        if self.estimated:
            e = self.estimated
            bits = [
                f"upper<{e.floor}" if e.floor is not None else "",
                f"drop>{e.max_drop}" if e.max_drop else "",
            ]
            parts.append(f"estimated({e.metric} {' or '.join(b for b in bits if b)} x{e.consecutive})")
        if parts and self.cooldown and "cooldown" in self.policy.trigger.model_fields_set:
            parts.append(f"cooldown {self.cooldown}")
        return " | ".join(parts) or "never"

    def window_label(self) -> str:
        w = self.spec.training.window
        if w.kind == "rolling":
            return f"rolling {w.period or f'{w.rows} rows'}"
        if w.kind == "decay":
            return f"decay {w.half_life}"
        return "all"


def _merge(base: BaseModel, override: BaseModel | None) -> Any:
    if override is None:
        return base
    data = {**base.model_dump(), **override.model_dump(exclude_unset=True)}
    return type(base).model_validate(data)


def resolve_policy(policy: Policy, spec: ModelSpec) -> ResolvedPolicy:
    """Apply a policy's window, gate and params to the spec and merge its triggers onto the spec's."""
    t = policy.trigger
    overrides: dict[str, Any] = {"gate": _merge(spec.gate, policy.gate).model_dump(mode="json")}
    if policy.window is not None:
        overrides["training.window"] = policy.window.model_dump(mode="json")
    if policy.params:
        overrides["training.estimator.params"] = {**spec.training.estimator.params, **policy.params}
    try:
        pspec = spec.with_overrides(overrides)
    except SpecError as exc:
        raise PolicyError(f"policy {policy.name!r}: {exc}") from None
    st = spec.triggers

    def pick(base: Any, given: Any) -> Any:
        if given is None and not (t.from_spec and base.enabled):
            return None
        merged = _merge(base, given)
        return merged if merged.enabled else None

    drift = pick(st.drift, t.drift)
    perf = pick(st.performance, t.performance)
    volume = pick(st.volume, t.volume)
    try:  # off by default in specs, so a policy that names the rule turns it on unless it says otherwise
        given = t.estimated
        if given is not None and "enabled" not in given.model_fields_set:
            given = given.model_copy(update={"enabled": True})
        estimated = pick(st.estimated, given)
        if estimated is not None:
            check_estimated(spec.task, estimated)
    except ValueError as exc:
        raise PolicyError(f"policy {policy.name!r}: trigger.estimated: {exc}") from None
    floor = None
    if perf is not None:
        floor = perf.floor if perf.floor is not None else spec.gate.floor
        if floor is None and perf.max_drop is None:
            raise PolicyError(
                f"policy {policy.name!r}: trigger.performance needs `floor` (or gate.floor in the spec) or `max_drop`"
            )
    cooldown = t.cooldown if "cooldown" in t.model_fields_set else st.cooldown
    return ResolvedPolicy(
        policy=policy,
        spec=pspec,
        schedule=t.schedule.every if t.schedule else None,
        drift=drift,
        performance=perf,
        performance_floor=floor,
        volume=volume,
        cooldown=cooldown,
        estimated=estimated,
    )
