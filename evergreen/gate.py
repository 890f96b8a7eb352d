"""Champion/challenger gate: metric floor, paired-bootstrap CI on the difference, latency budget."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import BaseModel

from evergreen.metrics import metric_value, paired_bootstrap
from evergreen.spec import HIGHER_IS_BETTER, Gate


class GateDecision(BaseModel):
    """Every number the decision used, so the registry tag explains itself."""

    passed: bool
    reasons: list[str]
    metric: str
    challenger: float
    champion: float | None
    champion_version: str | None
    floor: float | None
    diff_mean: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float
    tolerance: float
    require_superiority: bool
    latency_p95_ms: float | None
    latency_budget_ms: float | None
    n_holdout: int
    n_resamples: int
    # Hold-out rows left out because the champion trained on them (a refit learns its own hold-out).
    n_excluded: int = 0
    insufficient_evidence: bool = False
    # gate.slices table (evergreen.slices.SliceRow dumps); empty when no slices are configured.
    slices: list[dict[str, Any]] = []

    @property
    def outcome(self) -> str:
        """passed | rejected | insufficient_evidence (status stays promoted/rejected; this says why)."""
        if self.insufficient_evidence:
            return "insufficient_evidence"
        return "passed" if self.passed else "rejected"

    @property
    def summary(self) -> str:
        return "; ".join(self.reasons)


def _clears_floor(value: float, floor: float, higher: bool) -> bool:
    return value >= floor if higher else value <= floor


def decide(
    gate: Gate,
    metric: str,
    y: np.ndarray,
    challenger_scores: np.ndarray,
    champion_scores: np.ndarray | None = None,
    *,
    champion_version: str | None = None,
    latency_p95_ms: float | None = None,
) -> GateDecision:
    """Pass only if every check passes. With no champion, only the floor (and latency) apply."""
    higher = HIGHER_IS_BETTER[metric]
    chal = metric_value(metric, y, challenger_scores)
    reasons: list[str] = []
    passed = True
    if math.isnan(chal):
        passed = False
        reasons.append(f"{metric} is undefined on the hold-out (one class only, or a constant target?)")
    elif gate.floor is not None:
        ok = _clears_floor(chal, gate.floor, higher)
        passed &= ok
        cmp = (">=" if higher else "<=") if ok else ("<" if higher else ">")
        reasons.append(f"{metric} {chal:.4f} {cmp} floor {gate.floor:.4f}")

    champ = diff = None
    if champion_scores is not None:
        champ = metric_value(metric, y, champion_scores)
        diff = paired_bootstrap(
            metric,
            y,
            challenger_scores,
            champion_scores,
            n_resamples=gate.n_bootstrap,
            confidence=gate.confidence,
            seed=gate.seed,
        )
        pct = int(round(gate.confidence * 100))
        if gate.require_superiority:
            ok = diff.low > gate.tolerance
            need = f"> {gate.tolerance:+.4f} (superiority)"
        else:
            ok = diff.low >= -gate.tolerance
            need = f">= {-gate.tolerance:+.4f} (non-inferiority)"
        ok = ok and not math.isnan(diff.low)
        passed &= ok
        reasons.append(
            f"{pct}% CI of challenger-champion [{diff.low:+.4f}, {diff.high:+.4f}] "
            f"{'meets' if ok else 'fails'} lower bound {need}"
        )
    else:
        reasons.append("no champion: floor only")

    if gate.latency_p95_ms is not None and latency_p95_ms is not None:
        ok = latency_p95_ms <= gate.latency_p95_ms
        passed &= ok
        reasons.append(
            f"p95 latency {latency_p95_ms:.1f} ms {'within' if ok else 'over'} budget {gate.latency_p95_ms:.0f} ms"
        )

    if not gate.enabled:
        reasons.append("gate disabled: promoting regardless")
        passed = not math.isnan(chal)

    return GateDecision(
        passed=passed,
        reasons=reasons,
        metric=metric,
        challenger=chal,
        champion=champ,
        champion_version=champion_version,
        floor=gate.floor,
        diff_mean=None if diff is None else diff.mean,
        ci_low=None if diff is None else diff.low,
        ci_high=None if diff is None else diff.high,
        confidence=gate.confidence,
        tolerance=gate.tolerance,
        require_superiority=gate.require_superiority,
        latency_p95_ms=latency_p95_ms,
        latency_budget_ms=gate.latency_p95_ms,
        n_holdout=int(len(y)),
        n_resamples=0 if diff is None else diff.n_resamples,
    )


def with_evidence(
    decision: GateDecision, *, unseen_rows: int, excluded_rows: int, min_rows: int
) -> GateDecision:
    """Apply `gate.min_holdout_rows`: fewer unseen rows than that is 'insufficient evidence', never a pass.

    `unseen_rows` are the hold-out rows neither model trained on; `excluded_rows` those the champion
    trained on. With enough unseen rows the decision stands (the caller scored only the unseen rows).
    """
    if unseen_rows >= min_rows:
        return decision.model_copy(update={"n_excluded": excluded_rows})
    note = (
        f"insufficient evidence: {unseen_rows} hold-out rows neither model trained on "
        f"(gate.min_holdout_rows is {min_rows}; {excluded_rows} excluded as the champion trained on them)"
    )
    return decision.model_copy(
        update={
            "passed": False,
            "insufficient_evidence": True,
            "n_excluded": excluded_rows,
            "reasons": [note, *(f"(not judged) {r}" for r in decision.reasons)],
        }
    )


def _fmt(v: float | None, spec: str = ".4f") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def to_markdown(decision: GateDecision, title: str = "Gate report") -> str:
    """A human-readable gate report (Prefect artifact and MLflow artifact)."""
    verdict = "PASSED - promoted to `champion`" if decision.passed else "REJECTED - champion unchanged"
    if decision.insufficient_evidence:
        verdict = "INSUFFICIENT EVIDENCE - registered, not promoted; champion unchanged"
    rows = [
        ("metric", decision.metric),
        ("challenger", _fmt(decision.challenger)),
        (
            f"champion{' v' + decision.champion_version if decision.champion_version else ''}",
            _fmt(decision.champion),
        ),
        ("floor", _fmt(decision.floor)),
        ("mean difference (challenger - champion)", _fmt(decision.diff_mean, "+.4f")),
        (
            f"{int(decision.confidence * 100)}% CI",
            f"[{_fmt(decision.ci_low, '+.4f')}, {_fmt(decision.ci_high, '+.4f')}]",
        ),
        ("tolerance", _fmt(decision.tolerance)),
        ("superiority required", str(decision.require_superiority)),
        ("p95 batch latency (ms)", _fmt(decision.latency_p95_ms, ".1f")),
        ("latency budget (ms)", _fmt(decision.latency_budget_ms, ".0f")),
        ("hold-out rows", str(decision.n_holdout)),
        ("hold-out rows excluded (champion trained on them)", str(decision.n_excluded)),
        ("bootstrap resamples", str(decision.n_resamples)),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    checks = "\n".join(f"- {r}" for r in decision.reasons)
    return (
        f"# {title}\n\n**{verdict}**\n\n| | |\n|---|---|\n{table}\n\n{checks}\n{_slices_markdown(decision)}"
    )


def _slices_markdown(decision: GateDecision) -> str:
    """The gate.slices table: every slice, both models, the signed delta and the verdict."""
    if not decision.slices:
        return ""
    head = (
        "| feature | slice | rows | champion | challenger | delta | verdict |\n|---|---|---|---|---|---|---|"
    )
    body = "\n".join(
        f"| {r['feature']} | {r['slice']} | {r['rows']} | {_fmt(r['champion'])} | {_fmt(r['challenger'])} "
        f"| {_fmt(r['delta'], '+.4f')} | {r['verdict']} |"
        for r in decision.slices
    )
    return f"\n## Slices (no slice with >= the minimum rows may regress by more than the tolerance)\n\n{head}\n{body}\n"
