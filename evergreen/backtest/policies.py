"""The policies file: named retrain policies in the model spec's own trigger, window and gate vocabulary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evergreen.spec import (
    DriftTrigger,
    EstimatedPerformanceTrigger,
    Gate,
    PerformanceTrigger,
    VolumeTrigger,
    Window,
    _check_duration,
)
from evergreen.spec_base import read_yaml
from evergreen.spec_update import Update


class PolicyError(ValueError):
    """A policies file or policy that cannot be used; the message names the key and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScheduleRule(_Strict):
    every: int = Field(ge=1, description="Retrain after this many scored batches without a retrain.")


class PolicyTrigger(_Strict):
    """When to retrain. Listed rules combine with OR; a schedule next to others acts as a fallback.

    Each rule is the spec's trigger section: fields given here override the model spec's values,
    fields left out come from the spec (so `drift: {threshold: 0.3}` keeps the spec's bins and share).
    """

    from_spec: bool = Field(
        default=False, description="Start from the spec's enabled drift/performance/volume."
    )
    schedule: ScheduleRule | None = None
    drift: DriftTrigger | None = None
    performance: PerformanceTrigger | None = None
    volume: VolumeTrigger | None = None
    estimated: EstimatedPerformanceTrigger | None = Field(
        default=None,
        description="The label-free CBPE estimate (triggers.estimated; evergreen.backtest.estimates).",
    )
    cooldown: str | None = Field(default=None, description="Default: the spec's triggers.cooldown.")

    _dur = field_validator("cooldown")(classmethod(lambda cls, v: _check_duration(v)))


class Policy(_Strict):
    """One named policy: trigger + training window + gate (+ optional estimator params)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$", max_length=64)
    description: str = ""
    trigger: PolicyTrigger = PolicyTrigger()
    window: Window | None = Field(default=None, description="Default: the spec's training.window.")
    gate: Gate = Field(
        default=Gate(),
        description="true: the spec's gate; false: no gate (nothing held out, every model promoted); "
        "a mapping: the spec's gate with these fields overridden.",
    )
    refit: bool | None = Field(
        default=None,
        description="After a passed gate, refit on the hold-out too (two fits). Default: the spec's training.refit.",
    )
    params: dict[str, Any] = Field(default_factory=dict, description="Estimator params over the spec's.")
    label_delay: int = Field(
        default=0,
        ge=0,
        description="Labels arrive this many batches after their rows (evergreen.backtest.labels).",
    )
    update: Update | None = Field(
        default=None,
        description="training.update for this policy (warm-start updates between full refits); "
        "left out: the spec's; null: every retrain a full fit.",
    )
    baseline: bool = Field(
        default=False, description="Added by the backtester itself (with_baselines), not by the user."
    )

    @field_validator("trigger", mode="before")
    @classmethod
    def _trigger_words(cls, v: Any) -> Any:
        if v is None or v == "never":
            return {}
        if v == "spec":
            return {"from_spec": True}
        if isinstance(v, str):
            raise ValueError(f"{v!r} is not a trigger: use 'never', 'spec' or a mapping of rules")
        return v

    @field_validator("gate", mode="before")
    @classmethod
    def _gate_bool(cls, v: Any) -> Any:
        if v is True or v is None:
            return {}
        if v is False:
            return {"enabled": False}
        return v


class PolicySet(_Strict):
    """A policies file: the policies, and optionally drift points the user marks (for detection delay)."""

    policies: list[Policy] = Field(min_length=1)
    drifts: list[str | int] = Field(
        default_factory=list,
        description="Known drift points: timestamps, or batch numbers (0 = first batch).",
    )
    baseline_every: int = Field(
        default=4, ge=2, description="N of the 'every N batches' baseline added to every run."
    )

    @model_validator(mode="after")
    def _unique(self) -> PolicySet:
        names = [p.name for p in self.policies]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"policy names must be unique; repeated: {dupes}")
        return self


EVERY_BATCH = "baseline-every-batch"


def baseline_policies(every: int = 4) -> list[Policy]:
    """The honest baselines every run reports: retrain every batch and every N batches.

    Same model config and window as the spec (no params, no window override), no cooldown, no gate,
    so a policy's accuracy and CPU can be read against plain scheduled retraining.
    """
    return [
        Policy(
            name=EVERY_BATCH,
            description="baseline: full retrain after every batch, spec's model and window, no cooldown, no gate",
            trigger=PolicyTrigger(schedule=ScheduleRule(every=1), cooldown=None),
            gate=Gate(enabled=False),
            update=None,
            baseline=True,
        ),
        Policy(
            name=f"baseline-every-{every}",
            description=f"baseline: full retrain every {every} batches, spec's model and window, "
            "no cooldown, no gate",
            trigger=PolicyTrigger(schedule=ScheduleRule(every=every), cooldown=None),
            gate=Gate(enabled=False),
            update=None,
            baseline=True,
        ),
    ]


def with_baselines(policies: list[Policy], every: int = 4) -> list[Policy]:
    """The baselines first, then the user's policies (a user policy with a baseline's name is dropped)."""
    base = baseline_policies(every)
    names = {b.name for b in base}
    return [*base, *(p for p in policies if p.name not in names and not p.baseline)]


def _format_errors(exc: ValidationError, source: str, raw: Any) -> str:
    lines = [f"invalid policies {source}:"]
    raw_list = raw.get("policies") if isinstance(raw, dict) else None
    for err in exc.errors():
        parts: list[str] = []
        loc = list(err["loc"])
        for i, p in enumerate(loc):
            if isinstance(p, int) and i > 0 and loc[i - 1] == "policies":
                name = None
                if isinstance(raw_list, list) and p < len(raw_list) and isinstance(raw_list[p], dict):
                    name = raw_list[p].get("name")
                parts[-1] = f"policies[{p}]" + (f" ({name})" if name else "")
            elif isinstance(p, int):
                parts[-1] = f"{parts[-1]}[{p}]" if parts else f"[{p}]"
            else:
                parts.append(str(p))
        where = ".".join(parts) or "(top level)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def parse_policies(data: Any, source: str = "<dict>") -> PolicySet:
    """Validate a list of policies (or {policies: [...], drifts: [...]}); errors name each bad key."""
    if isinstance(data, list):
        data = {"policies": data}
    if not isinstance(data, dict):
        raise PolicyError(
            f"invalid policies {source}: expected a list of policies or a mapping with `policies`"
        )
    try:
        return PolicySet.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(_format_errors(exc, source, data)) from None


def load_policies(path: Path) -> PolicySet:
    """Read and validate a policies YAML file."""
    return parse_policies(read_yaml(path, "policies file", PolicyError), source=str(path))
