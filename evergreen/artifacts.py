"""The one slug helper for Prefect artifact keys (keys allow lowercase letters, digits and dashes)."""

from __future__ import annotations


def artifact_key(kind: str, model: str) -> str:
    """`<kind>-<model>` as a valid artifact key, e.g. artifact_key("gate", "elec2_v2") -> "gate-elec2-v2"."""
    return f"{kind}-{model}".lower().replace("_", "-")
