"""The lineage recorded on every registered model version: what data, code, checks and verdict made it.

These tags let anyone resolve a model version back to the exact rows, commit and gate decision behind
it (docs list them as the lineage-tag reference). Pure: the flow hands in what it already knows.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from evergreen.gate import GateDecision
from evergreen.validation import ValidationSummary

# MLflow caps tag values; 5000 characters keeps a full gate decision readable.
TAG_LIMIT = 5000
REFERENCE_PROFILE = "reference_profile.json"


class DataVersionLike(Protocol):
    """A registry data version (adapters.dvc_registry.DataVersion has this shape)."""

    @property
    def id(self) -> str: ...
    @property
    def rev(self) -> str: ...
    @property
    def md5(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def rows(self) -> int: ...


def as_tag(value: Any) -> str:
    """MLflow tag values are strings (max 5000 chars here): JSON for structures."""
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text[:TAG_LIMIT]


def gx_tag(summary: ValidationSummary) -> str:
    """The GX result in brief (the full result is the run's gx_result.json artifact)."""
    return as_tag(
        {
            "success": summary.success,
            "suite": summary.suite,
            "evaluated": summary.evaluated,
            "rows": summary.rows,
            "failures": len(summary.failures),
        }
    )


def build_lineage(
    *,
    data: DataVersionLike,
    registry: str,
    bounds: dict[str, str],
    train_rows: int,
    train_rows_md5: str,
    refit: bool,
    holdout_rows: int,
    window: dict[str, Any],
    reason: str,
    trigger_event_id: str | None,
    flow_run_id: str,
    code_sha: str,
    validation: ValidationSummary,
    verdict: GateDecision,
    train_seconds: float,
    train_cpu_seconds: float | None = None,
) -> dict[str, str]:
    """The tag dict for one registered version, in the order the lineage table shows it."""
    return {
        "data_version": data.id,
        "data_rev": data.rev,
        "data_md5": data.md5,
        "data_path": data.path,
        "data_rows": str(data.rows),
        "data_registry": registry,
        **bounds,
        "train_rows": str(train_rows),
        "train_rows_md5": train_rows_md5,
        "refit": str(refit).lower(),
        "holdout_rows": str(holdout_rows),
        "window": as_tag(window),
        "reason": reason,
        "trigger_event_id": trigger_event_id or "",
        "prefect_flow_run_id": flow_run_id,
        "code_git_sha": code_sha,
        "gx_result": gx_tag(validation),
        "gate_passed": str(verdict.passed).lower(),
        "gate_decision": as_tag(verdict.model_dump()),
        "train_seconds": f"{train_seconds:.3f}",
        # CPU seconds of every fit in the run (refit included), all threads: the cost the backtest compares.
        **({} if train_cpu_seconds is None else {"train_cpu_seconds": f"{train_cpu_seconds:.3f}"}),
        "reference_profile": REFERENCE_PROFILE,
    }


def judgement_tags(
    *,
    retrain_key: str,
    outcome: str,
    challenger: dict[str, str],
    challenger_rows: int,
    gate_rows: int,
    gate_bounds: tuple[str, str],
    excluded_rows: int,
    registered: dict[str, str],
    registered_rows: int,
    refit: bool,
) -> dict[str, str]:
    """Which model the gate judged, on which rows, and what was registered (they differ after a refit).

    `retrain_key` (the flow-run id) makes registration idempotent: one retrain, at most one version.
    """
    judged = (
        f"challenger trained on {challenger['train_start']}..{challenger['train_end']} ({challenger_rows} rows), "
        f"judged on {gate_rows} hold-out rows {gate_bounds[0]}..{gate_bounds[1]} neither model trained on"
    )
    if refit:
        what = f"refit on {registered['train_start']}..{registered['train_end']} ({registered_rows} rows, hold-out included)"
    else:
        what = "the judged challenger"
    return {
        "retrain_key": retrain_key,
        "gate_outcome": outcome,
        "gate_judged": as_tag(judged),
        "gate_rows": str(gate_rows),
        "gate_excluded_rows": str(excluded_rows),
        "registered": as_tag(what),
    }


def lineage_markdown(version: str, lineage: dict[str, str]) -> str:
    """The lineage table under the gate report (the gate decision itself is already shown above it)."""
    rows = "\n".join(f"| {k} | `{v}` |" for k, v in lineage.items() if k != "gate_decision")
    return f"## Lineage of v{version}\n\n| tag | value |\n|---|---|\n{rows}\n"


def gate_artifact(report_md: str, version: str, lineage: dict[str, str]) -> str:
    """The retrain flow's Prefect artifact: gate report, then the new version's lineage."""
    return f"{report_md}\n{lineage_markdown(version, lineage)}"
