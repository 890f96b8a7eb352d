"""MLflow Model Registry reads and alias moves that must not touch promotion tags (used by rollback)."""

from __future__ import annotations

from typing import Any

from adapters.mlflow_registry import client
from evergreen.settings import Settings


def version_tags(settings: Settings, name: str, version: str) -> dict[str, str] | None:
    """The tags of version `version` of `name`, or None when there is no such version."""
    from mlflow.exceptions import MlflowException

    try:
        mv: Any = client(settings).get_model_version(name, version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise
    return dict(mv.tags)


def point_alias(settings: Settings, name: str, alias: str, version: str) -> None:
    """Move `alias` to `version` only: the version's promotion tags (promoted_at, replaced_version...)
    stay as the promotion wrote them, so the champion history can still be walked back."""
    client(settings).set_registered_model_alias(name, alias, version)
