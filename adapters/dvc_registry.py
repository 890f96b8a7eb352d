"""The git+DVC data registry: every ingested batch becomes a new, pushed DVC version.

Layout of the registry repo (default `EVERGREEN_HOME/data-registry`, or any git URL in production):

    data/                 tracked by data.dvc (one DVC output for all datasets)
      <dataset>/part-<utc>-<md5[:12]>.parquet   one file per ingested batch
    data.dvc

A data version is `<git rev>:<data.dvc md5>`; `read_dataset(rev=...)` reads any past one back through
`dvc.api.DVCFileSystem`, so a model's tags resolve to the exact rows it was trained on.
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
from pathlib import Path
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
        "Evergreen data registry: data/ is tracked by data.dvc. Written by `evergreen ingest`.\n"
    )
    git_run(root, "add", "-A")
    git_run(root, "commit", "-q", "-m", "Initialise Evergreen data registry", settings=settings)
    logger.info("created data registry at %s with DVC remote %s", root, remote)
    return root


def frame_md5(frame: pd.DataFrame) -> str:
    """Content hash of a frame's rows (order-sensitive), used for part names and lineage checks."""
    h = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.md5(h.tobytes()).hexdigest()


def dvc_md5(root: Path) -> str:
    """The md5 of data/ recorded in the work tree's data.dvc."""
    meta = yaml.safe_load((root / "data.dvc").read_text())
    return str(meta["outs"][0]["md5"])


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
    """data.dvc is committed but DVC cannot list data/: its objects left the cache and the remote."""
    try:
        fs.ls("data")
    except Exception as exc:  # noqa: BLE001  dvc_data raises DataIndexDirError (and kin) here
        raise RegistryError(
            f"registry rev {sha[:12]}: the data objects of data/ are missing from the DVC cache and "
            f"the DVC remote {settings.remote_url} ({type(exc).__name__}); restore the remote or "
            "`dvc push` from a copy that still has them"
        ) from None


def read_dataset(
    settings: Settings, dataset: str, rev: str | None = None
) -> tuple[pd.DataFrame, DataVersion]:
    """All rows of a dataset at a pinned registry rev, read through DVCFileSystem (cache, then remote)."""
    from dvc.api import DVCFileSystem

    sha = resolve_rev(settings, rev)
    fs = DVCFileSystem(settings.registry_path, rev=sha)
    try:
        meta = yaml.safe_load(fs.read_text("data.dvc"))
    except FileNotFoundError:
        raise RegistryError(
            f"registry rev {sha[:12]} has no data.dvc: nothing has been ingested yet"
        ) from None
    folder = f"data/{dataset}"
    if not fs.exists(folder):
        raise_if_objects_missing(fs, sha, settings)  # issue 9 case 12: not "ingest a batch first"
        raise RegistryError(
            f"registry rev {sha[:12]} has no dataset {folder!r}: ingest a batch for this model first"
        )
    parts = sorted(p for p in fs.find(folder) if p.endswith(".parquet"))  # committed parts only
    frames = [pd.read_parquet(io.BytesIO(fs.read_bytes(p))) for p in parts]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    version = DataVersion(rev=sha, md5=str(meta["outs"][0]["md5"]), path=folder, rows=len(frame))
    return frame, version


def current_version(settings: Settings, dataset: str) -> DataVersion:
    """The registry HEAD's version of a dataset (rows counted from the parquet footers)."""
    root = Path(settings.registry_path)
    rev = resolve_rev(settings, None)
    folder = root / "data" / dataset
    return DataVersion(rev=rev, md5=dvc_md5(root), path=f"data/{dataset}", rows=count_rows(folder))


def count_rows(folder: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(p).num_rows for p in folder.glob("part-*.parquet")) if folder.exists() else 0
