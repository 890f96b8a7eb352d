"""Plain registry reads for the monitor (no @task): which rows to measure, and the champion's profile.

Which rows a monitor run measures (`select_rows`):

- a batch file: that file;
- a data rev (the `evergreen.data.ingested` trigger passes the rev the ingest committed): the rows that
  commit added, i.e. the parquet parts present at the rev and absent at its parent. This is the batch
  that just arrived, so consecutive monitor runs measure disjoint batches. A rev that added delayed
  labels (`evergreen ingest-labels`) selects the rows those labels belong to, now labelled, so the
  monitor measures the champion's performance on them;
- no rev (the cron schedule, or `evergreen monitor MODEL`): the rows at the registry HEAD that are newer
  than the champion's hold-out end (`holdout_end` tag), i.e. the data the champion has never seen.

Registry rows carry the delayed labels ingested up to the rev; rows still unlabelled count for drift
only (evergreen.monitoring measures performance on the labelled ones). Either registry case falls back to the newest ingested part when it would otherwise measure nothing.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import pandas as pd

from adapters import dvc_registry as data_registry
from adapters import mlflow_registry as model_registry
from evergreen.drift import ReferenceProfile
from evergreen.settings import Settings
from evergreen.spec import ModelSpec
from evergreen.validation import coerce_batch

logger = logging.getLogger(__name__)


@dataclass
class Rows:
    """The rows one monitor run measures, and where they came from."""

    frame: pd.DataFrame
    source: str
    selection: str  # "file" | "added-at-rev" | "labelled-at-rev" | "unseen-by-champion" | "latest-part"
    data_version: str = ""
    data_rev: str = ""
    parts: tuple[str, ...] = ()


def load_profile(settings: Settings, champ: model_registry.Champion) -> ReferenceProfile:
    """The champion's reference profile, stored as an artifact of its MLflow run."""
    path = champ.tags.get("reference_profile") or "reference_profile.json"
    return ReferenceProfile.model_validate_json(
        model_registry.load_artifact_text(settings, champ.run_id, path)
    )


def _parts(fs: Any, folder: str, pattern: str = data_registry.PART_GLOB) -> list[str]:
    if not fs.exists(folder):
        return []
    return sorted(p for p in fs.find(folder) if PurePosixPath(p).match(pattern))


def _read(fs: Any, parts: list[str]) -> pd.DataFrame:
    frames = [pd.read_parquet(io.BytesIO(fs.read_bytes(p))) for p in parts]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _parent_parts(settings: Settings, sha: str, folder: str, pattern: str) -> list[str]:
    """Parts of the dataset at the parent commit (none when `sha` is the first commit)."""
    from dvc.api import DVCFileSystem

    try:
        fs = DVCFileSystem(settings.registry_path, rev=f"{sha}^")
        return _parts(fs, folder, pattern)
    except Exception:  # noqa: BLE001 - no parent commit, or no data.dvc at the parent: nothing existed
        return []


def _labelled(rows: pd.DataFrame, fs: Any, labels: list[str]) -> pd.DataFrame:
    return data_registry.apply_labels(rows, _read(fs, labels) if labels else None)


def select_rows(
    settings: Settings, spec: ModelSpec, champ: model_registry.Champion | None, data_rev: str | None
) -> Rows:
    """The registry rows to measure (see the module docstring). Raises RegistryError without data."""
    from dvc.api import DVCFileSystem

    sha = data_registry.resolve_rev(settings, data_rev or None)
    with data_registry.dvc_output_to_stderr():
        fs = DVCFileSystem(settings.registry_path, rev=sha)
        folder = f"data/{spec.data.path}"
        parts = _parts(fs, folder)
        if not parts:
            raise data_registry.RegistryError(f"registry rev {sha[:12]} has no data for {folder!r}")
        labels = _parts(fs, folder, data_registry.LABELS_GLOB)
        version = data_registry.version_at(settings, fs, sha, spec.data.path)
        tcol = spec.data.time_column

        if data_rev:
            added = sorted(set(parts) - set(_parent_parts(settings, sha, folder, data_registry.PART_GLOB)))
            if added:
                frame = coerce_batch(_labelled(_read(fs, added), fs, labels), spec)
                return Rows(frame, f"rows ingested at {sha[:12]}", "added-at-rev", version, sha, tuple(added))
            new_labels = sorted(
                set(labels) - set(_parent_parts(settings, sha, folder, data_registry.LABELS_GLOB))
            )
            if new_labels and spec.data.delayed_labels is not None:
                ids = _read(fs, new_labels).iloc[:, 0]
                idc = spec.data.delayed_labels.id_column
                rows = _labelled(_read(fs, parts), fs, labels)
                frame = coerce_batch(rows[rows[idc].isin(ids)].reset_index(drop=True), spec)
                return Rows(
                    frame, f"rows labelled at {sha[:12]}", "labelled-at-rev", version, sha, tuple(new_labels)
                )

        end = champ.tags.get("holdout_end") if champ else None
        if end:
            frame = coerce_batch(_labelled(_read(fs, parts), fs, labels), spec)
            unseen = frame[frame[tcol] > pd.Timestamp(end)].reset_index(drop=True)
            if len(unseen):
                return Rows(
                    unseen,
                    f"rows after the champion's hold-out end {end} at {sha[:12]}",
                    "unseen-by-champion",
                    version,
                    sha,
                    tuple(parts),
                )
        frame = coerce_batch(_labelled(_read(fs, parts[-1:]), fs, labels), spec)
        return Rows(
            frame, f"newest ingested part at {sha[:12]}", "latest-part", version, sha, tuple(parts[-1:])
        )
