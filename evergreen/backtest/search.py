"""Policy search: a small grid of policies (trigger x update mode x gate x cooldown), the Pareto front of
mean accuracy against training CPU, and the recommended spec section.

Pure: builds Policy objects and reads a BacktestReport; the CLI (`evergreen backtest-search`) runs them.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from pydantic import Field

from evergreen.backtest.policies import Policy, PolicyError, _Strict, parse_policies
from evergreen.backtest.results import BacktestReport, PolicyResult
from evergreen.spec_base import read_yaml
from evergreen.spec_update import Update


def _full_only() -> dict[str, Update | None]:
    return {"full": None}


def _no_cooldown() -> list[str | None]:
    return [None]


class Grid(_Strict):
    """The grid file: named triggers, update modes (null: full fits), gates and cooldowns."""

    triggers: dict[str, dict[str, Any]] = Field(min_length=1)
    updates: dict[str, Update | None] = Field(default_factory=_full_only)
    gates: list[bool] = Field(default_factory=lambda: [False])
    cooldowns: list[str | None] = Field(default_factory=_no_cooldown)
    baseline_every: int = Field(default=4, ge=2)


DEFAULT_GRID: dict[str, Any] = {
    "triggers": {
        "weekly": {"schedule": {"every": 1}},
        "every-2": {"schedule": {"every": 2}},
        "drift": {"drift": {"statistic": "psi", "threshold": 0.2}, "schedule": {"every": 4}},
    },
    "updates": {
        "full": None,
        "u15-4W-r8-lr03": {"trees": 15, "window": "4W", "refit_every": 8, "learning_rate": 0.03},
    },
    "gates": [False, True],
    "cooldowns": [None],
}


def load_grid(path: Path | None) -> Grid:
    """The grid file (YAML), or the default grid."""
    data: Any = DEFAULT_GRID
    if path is not None:
        data = read_yaml(path, "grid file", PolicyError)
    try:
        return Grid.model_validate(data)
    except ValueError as exc:
        raise PolicyError(f"invalid grid {path or '(default)'}: {exc}") from None


def grid_policies(grid: Grid) -> list[Policy]:
    """One policy per (trigger, update, gate, cooldown), named from the parts."""
    items = []
    for (tname, trig), (uname, upd), gated, cd in itertools.product(
        grid.triggers.items(), grid.updates.items(), grid.gates, grid.cooldowns
    ):
        name = f"{tname}.{uname}.{'gate' if gated else 'nogate'}" + (f".cd{cd}" if cd else "")
        items.append(
            {
                "name": name,
                "description": f"search: trigger {tname}, {uname}, gate {'on' if gated else 'off'}, "
                f"cooldown {cd or 'none'}",
                "trigger": {**trig, "cooldown": cd},
                "gate": gated,
                "update": None if upd is None else upd.model_dump(mode="json"),
            }
        )
    return parse_policies(items, source="(search grid)").policies


def pareto(points: list[tuple[str, float, float]]) -> list[str]:
    """Names not dominated in (higher accuracy, lower cost), cheapest first."""
    front = [
        (n, a, c)
        for n, a, c in points
        if not any(a2 >= a and c2 <= c and (a2, c2) != (a, c) for _, a2, c2 in points)
    ]
    return [n for n, _, _ in sorted(front, key=lambda t: (t[2], -t[1], t[0]))]


def accuracy_cpu_front(report: BacktestReport) -> list[PolicyResult]:
    """The report's policies on the Pareto front of mean accuracy (or metric) vs training CPU seconds."""

    def score(p: PolicyResult) -> float:
        v = p.mean_accuracy if p.mean_accuracy is not None else p.mean_metric
        return -1e300 if v is None else v

    names = pareto([(p.name, score(p), p.train_seconds) for p in report.policies])
    return [report.policy(n) for n in names]


def recommend(report: BacktestReport, max_cpu: float) -> PolicyResult | None:
    """The front's most accurate policy within `max_cpu` x the every-batch baseline's CPU (baselines excluded)."""
    ok = [
        p
        for p in accuracy_cpu_front(report)
        if not p.baseline and p.cpu_ratio is not None and p.cpu_ratio <= max_cpu
    ]
    return max(ok, key=lambda p: (p.mean_accuracy or 0.0, -p.train_seconds), default=None)


def spec_section(policy: Policy) -> dict[str, Any]:
    """The policy as the spec's training.update / triggers keys (what to paste into models/<model>.yaml)."""
    t = policy.trigger
    triggers: dict[str, Any] = {}
    if t.schedule is not None:
        triggers["schedule_every_batches"] = t.schedule.every
    for key in ("drift", "performance", "volume"):
        rule = getattr(t, key)
        if rule is not None:
            triggers[key] = {"enabled": True, **rule.model_dump(mode="json", exclude_unset=True)}
    triggers["cooldown"] = t.cooldown
    return {
        "training": {"update": None if policy.update is None else policy.update.model_dump(mode="json")},
        "triggers": triggers,
        "gate": {"enabled": policy.gate.enabled},
    }
