"""The git+DVC data registry: every ingested batch becomes a new, pushed DVC version of its dataset.

Layout of the registry repo (default `EVERGREEN_HOME/data-registry`, or any git URL in production):

    data/
      <dataset>.dvc       one DVC output per dataset: data/<dataset>/
      <dataset>/part-<utc>-<md5[:12]>.parquet     one file per ingested batch
      <dataset>/labels-<utc>-<md5[:12]>.parquet   delayed labels (id column, target), one per label file

A dataset's data version is `<rev>:<md5>`: `rev` is the last registry commit that changed THAT dataset's
.dvc file and `md5` the md5 it records, so ingesting into one dataset never changes another's version.
`read_dataset(rev=...)` reads any past one back through `dvc.api.DVCFileSystem`, so a model's tags
resolve to the exact rows it was trained on. A registry written before per-dataset versions (one
`data.dvc` for all of data/) is migrated by the next write (adapters/dvc_ingest.py), and its old revs
still read back (`data.dvc` at those revs).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
import yaml

from evergreen.settings import Settings

logger = logging.getLogger(__name__)


class RegistryError(RuntimeError):
    """The data registry is missing, unreadable, or has no data for a model."""


@dataclass(frozen=True)
class DataVersion:
    rev: str
    md5: str
    path: str
    rows: int

    @property
    def id(self) -> str:
        return f"{self.rev}:{self.md5}"

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "data_version": self.id}


@contextlib.contextmanager
def dvc_output_to_stderr() -> Iterator[None]:
    """DVC's Python API logs git hints to stdout; keep stdout clean for `--json` output."""
    dvc_log = logging.getLogger("dvc")
    level = dvc_log.level
    dvc_log.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        dvc_log.setLevel(level)


def git_run(repo: Path, *args: str, settings: Settings | None = None) -> str:
    ident: list[str] = []
    if settings is not None:
        # A fresh machine may have no git identity; registry commits carry their own.
        ident = [
            "-c",
            f"user.name={settings.git_author_name}",
            "-c",
            f"user.email={settings.git_author_email}",
        ]
    out = subprocess.run(["git", *ident, *args], cwd=repo, capture_output=True, text=True)
    if out.returncode != 0:
        raise RegistryError(f"git {' '.join(args)} failed in {repo}: {first_line(out.stderr or out.stdout)}")
    return out.stdout.strip()


def first_line(text: str) -> str:
    """The first non-empty line of a tool's output (git explains a held lock in six lines)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "(no output)")


def _is_local(url: str) -> bool:
    return "://" not in url and not url.startswith("git@")


def ensure_registry(settings: Settings) -> Path:
    """Create the local registry (git init, dvc init, default remote) if it does not exist yet."""
    from dvc.repo import Repo

    url = settings.registry_path
    if not _is_local(url):
        raise RegistryError(
            f"ingest needs a local clone of the registry; got {url!r} (clone it, then set EVERGREEN_DATA_REPO)"
        )
    root = Path(url)
    if (root / ".dvc").is_dir() and (root / ".git").exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    if not (root / ".git").exists():
        git_run(root, "init", "-q", "-b", "main")
    with dvc_output_to_stderr():
        Repo.init(str(root), subdir=False, force=True)
    remote = settings.remote_url
    if _is_local(remote):
        Path(remote).mkdir(parents=True, exist_ok=True)
    with Repo(str(root)) as repo, repo.config.edit() as conf:
        conf["core"]["remote"] = "storage"
        conf["remote"]["storage"] = {"url": remote}
        conf["core"]["autostage"] = True
    (root / "data").mkdir(exist_ok=True)
    (root / "README.md").write_text(
        "Evergreen data registry: data/<dataset>/ is tracked by data/<dataset>.dvc. "
        "Written by `evergreen ingest`.\n"
    )
    git_run(root, "add", "-A")
    git_run(root, "commit", "-q", "-m", "Initialise Evergreen data registry", settings=settings)
    logger.info("created data registry at %s with DVC remote %s", root, remote)
    return root


def frame_md5(frame: pd.DataFrame) -> str:
    """Content hash of a frame's rows (order-sensitive), used for part names and lineage checks."""
    h = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.md5(h.tobytes()).hexdigest()


LEGACY_DVC = "data.dvc"  # the single output of registries written before per-dataset versions
PART_GLOB = "part-*.parquet"
LABELS_GLOB = "labels-*.parquet"


def dvc_file(dataset: str) -> str:
    """The registry path of the .dvc file that tracks one dataset."""
    return f"data/{dataset}.dvc"


def out_md5(dvc_text: str | bytes) -> str:
    return str(yaml.safe_load(dvc_text)["outs"][0]["md5"])


def dvc_md5(root: Path, dataset: str) -> str:
    """The md5 of data/<dataset>/ recorded in the work tree's data/<dataset>.dvc."""
    return out_md5((root / dvc_file(dataset)).read_text())


def dataset_rev(root: Path, sha: str, dataset: str) -> str:
    """The last commit at or before `sha` that changed this dataset's .dvc file (its data version's rev).

    A rev of a pre-migration registry (one data.dvc) keeps its old meaning: the rev itself."""
    out = subprocess.run(
        ["git", "log", "-1", "--format=%H", sha, "--", dvc_file(dataset)],
        cwd=root, capture_output=True, text=True,
    )  # fmt: skip
    return out.stdout.strip() or sha


def resolve_rev(settings: Settings, rev: str | None) -> str:
    """A full commit sha for `rev` (default: the registry's HEAD)."""
    url = settings.registry_path
    if _is_local(url):
        if not (Path(url) / ".git").exists():
            raise RegistryError(
                f"no data registry at {url}: ingest a batch first (evergreen ingest MODEL FILE)"
            )
        return git_run(Path(url), "rev-parse", "--verify", f"{rev or 'HEAD'}^{{commit}}")
    out = subprocess.run(["git", "ls-remote", url, rev or "HEAD"], capture_output=True, text=True)
    if out.returncode != 0 or not out.stdout.strip():
        if rev and len(rev) == 40:
            return rev
        raise RegistryError(f"cannot resolve rev {rev or 'HEAD'} in {url}: {out.stderr.strip()}")
    return out.stdout.split()[0]


def raise_if_objects_missing(fs: Any, sha: str, settings: Settings) -> None:
    """A .dvc file is committed but DVC cannot list data/: its objects left the cache and the remote."""
    try:
        fs.ls("data")
    except Exception as exc:  # noqa: BLE001  dvc_data raises DataIndexDirError (and kin) here
        raise RegistryError(
            f"registry rev {sha[:12]}: the data objects of data/ are missing from the DVC cache and "
            f"the DVC remote {settings.remote_url} ({type(exc).__name__}); restore the remote or "
            "`dvc push` from a copy that still has them"
        ) from None


def _dataset_meta(fs: Any, sha: str, dataset: str) -> str:
    """The md5 of the dataset at `sha`: its own .dvc, or the legacy data.dvc of an unmigrated rev."""
    for name in (dvc_file(dataset), LEGACY_DVC):
        try:
            return out_md5(fs.read_text(name))
        except FileNotFoundError:
            continue
    raise RegistryError(
        f"registry rev {sha[:12]} has no data for {dataset!r}: ingest a batch for this model first"
    )


def _read_parts(fs: Any, folder: str, pattern: str) -> pd.DataFrame | None:
    parts = sorted(p for p in fs.find(folder) if PurePosixPath(p).match(pattern))
    frames = [pd.read_parquet(io.BytesIO(fs.read_bytes(p))) for p in parts]
    return pd.concat(frames, ignore_index=True) if frames else None


def apply_labels(rows: pd.DataFrame, labels: pd.DataFrame | None) -> pd.DataFrame:
    """Rows with delayed labels filled in. A labels part holds two columns: the id column, the target.

    Label ingest refuses unknown ids and conflicting labels (evergreen.labels), so each id gets one label."""
    if labels is None or labels.empty or rows.empty:
        return rows
    id_col, target = str(labels.columns[0]), str(labels.columns[1])
    known = labels.drop_duplicates(subset=[id_col], keep="first").set_index(id_col)[target]
    out = rows.copy()
    filled = out[id_col].map(known).astype(object)
    # object first: an all-missing target column may have been stored as float or null dtype
    out[target] = out[target].astype(object).where(out[target].notna(), filled).infer_objects()
    return out


def read_dataset(
    settings: Settings, dataset: str, rev: str | None = None, *, with_labels: bool = True
) -> tuple[pd.DataFrame, DataVersion]:
    """All rows of a dataset at a pinned registry rev, read through DVCFileSystem (cache, then remote).

    Delayed labels ingested up to `rev` are filled in (`with_labels=False`: the rows as ingested)."""
    from dvc.api import DVCFileSystem

    sha = resolve_rev(settings, rev)
    fs = DVCFileSystem(settings.registry_path, rev=sha)
    md5 = _dataset_meta(fs, sha, dataset)
    folder = f"data/{dataset}"
    if not fs.exists(folder):
        raise_if_objects_missing(fs, sha, settings)  # issue 9 case 12: not "ingest a batch first"
        raise RegistryError(
            f"registry rev {sha[:12]} has no dataset {folder!r}: ingest a batch for this model first"
        )
    frame = _read_parts(fs, folder, PART_GLOB)  # committed parts only
    frame = pd.DataFrame() if frame is None else frame
    if with_labels:
        frame = apply_labels(frame, _read_parts(fs, folder, LABELS_GLOB))
    return frame, DataVersion(rev=_version_rev(settings, sha, dataset), md5=md5, path=folder, rows=len(frame))


def _version_rev(settings: Settings, sha: str, dataset: str) -> str:
    if not _is_local(settings.registry_path):  # no local history to search: the pinned rev itself
        return sha
    return dataset_rev(Path(settings.registry_path), sha, dataset)


def version_at(settings: Settings, fs: Any, sha: str, dataset: str) -> str:
    """The dataset's data_version id as of registry commit `sha` (fs: a DVCFileSystem at `sha`)."""
    return f"{_version_rev(settings, sha, dataset)}:{_dataset_meta(fs, sha, dataset)}"


def current_version(settings: Settings, dataset: str) -> DataVersion:
    """The registry HEAD's version of a dataset (rows counted from the parquet footers)."""
    root = Path(settings.registry_path)
    head = resolve_rev(settings, None)
    folder = root / "data" / dataset
    return DataVersion(
        rev=dataset_rev(root, head, dataset), md5=dvc_md5(root, dataset), path=f"data/{dataset}",
        rows=count_rows(folder),
    )  # fmt: skip


def count_rows(folder: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(p).num_rows for p in folder.glob(PART_GLOB)) if folder.exists() else 0
