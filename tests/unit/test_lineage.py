"""Lineage tags of a registered version: every documented key, strings only, MLflow-sized."""

from __future__ import annotations

import json
from dataclasses import dataclass

from evergreen.gate import GateDecision
from evergreen.lineage import as_tag, build_lineage, gate_artifact, lineage_markdown
from evergreen.validation import ValidationSummary

EXPECTED_KEYS = [
    "data_version", "data_rev", "data_md5", "data_path", "data_rows", "data_registry",
    "train_start", "train_end", "holdout_start", "holdout_end",
    "train_rows", "train_rows_md5", "refit", "holdout_rows", "window", "reason", "trigger_event_id",
    "prefect_flow_run_id", "code_git_sha", "gx_result", "gate_passed", "gate_decision", "train_seconds",
    "reference_profile",
]  # fmt: skip


@dataclass(frozen=True)
class FakeVersion:
    rev: str = "abc123"
    md5: str = "d41d8cd9"
    path: str = "data/elec2"
    rows: int = 3360

    @property
    def id(self) -> str:
        return f"{self.rev}:{self.md5}"


def verdict(passed: bool = True) -> GateDecision:
    return GateDecision(
        passed=passed, reasons=["roc_auc 0.81 >= floor 0.70"], metric="roc_auc", challenger=0.81, champion=0.8,
        champion_version="3", floor=0.7, diff_mean=0.01, ci_low=-0.002, ci_high=0.02, confidence=0.95,
        tolerance=0.005, require_superiority=False, latency_p95_ms=3.2, latency_budget_ms=50.0, n_holdout=336,
        n_resamples=1000,
    )  # fmt: skip


def summary() -> ValidationSummary:
    return ValidationSummary(suite="elec2-training", success=True, evaluated=12, failures=[], rows=3360)


def lineage(**kw: object) -> dict[str, str]:
    args: dict = dict(
        data=FakeVersion(), registry="/tmp/registry",
        bounds={"train_start": "a", "train_end": "b", "holdout_start": "c", "holdout_end": "d"},
        train_rows=3024, train_rows_md5="f00", refit=True, holdout_rows=336,
        window={"kind": "decay", "half_life": "4W"}, reason="drift", trigger_event_id=None,
        flow_run_id="run-1", code_sha="deadbeef", validation=summary(), verdict=verdict(), train_seconds=1.23456,
    )  # fmt: skip
    args.update(kw)
    return build_lineage(**args)


def test_lineage_has_every_key_in_table_order_and_only_strings():
    tags = lineage()
    assert list(tags) == EXPECTED_KEYS
    assert all(isinstance(v, str) for v in tags.values())


def test_lineage_values():
    tags = lineage()
    assert tags["data_version"] == "abc123:d41d8cd9"
    assert tags["data_rows"] == "3360" and tags["train_rows"] == "3024" and tags["holdout_rows"] == "336"
    assert tags["refit"] == "true" and tags["gate_passed"] == "true"
    assert tags["trigger_event_id"] == ""  # None becomes an empty tag, not "None"
    assert tags["train_seconds"] == "1.235"
    assert json.loads(tags["window"]) == {"half_life": "4W", "kind": "decay"}
    assert json.loads(tags["gx_result"]) == {
        "success": True, "suite": "elec2-training", "evaluated": 12, "rows": 3360, "failures": 0,
    }  # fmt: skip
    assert json.loads(tags["gate_decision"])["ci_low"] == -0.002
    assert lineage(verdict=verdict(passed=False), refit=False)["gate_passed"] == "false"


def test_as_tag_truncates_to_mlflow_size():
    assert as_tag("x" * 6000) == "x" * 5000
    assert as_tag({"b": 1, "a": [1, 2]}) == '{"a": [1, 2], "b": 1}'


def test_lineage_markdown_lists_tags_but_not_the_gate_decision():
    tags = lineage()
    md = lineage_markdown("7", tags)
    assert md.startswith("## Lineage of v7\n\n| tag | value |\n|---|---|\n")
    assert "| data_version | `abc123:d41d8cd9` |" in md
    assert "gate_decision" not in md
    assert gate_artifact("# Gate report\n", "7", tags) == f"# Gate report\n\n{md}"
