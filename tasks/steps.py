"""Compatibility re-exports: the tasks now live in modules named for what they do."""

from __future__ import annotations

from tasks.announce import emit_event, publish_markdown, publish_table
from tasks.data import ValidationFailed, pull_data, validate_frame
from tasks.registry import check_cooldown
from tasks.spec import load_model_spec
from tasks.training import train_model

__all__ = [
    "ValidationFailed",
    "check_cooldown",
    "emit_event",
    "load_model_spec",
    "publish_markdown",
    "publish_table",
    "pull_data",
    "train_model",
    "validate_frame",
]
