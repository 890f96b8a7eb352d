"""Atomic, idempotent appends to the DVC registry (issue 9 cases 1-2; docs/ingest.md "Crashes and retries").

One append runs under the registry lock:

1. `recover`: drop what a crashed ingest left uncommitted: parquet parts that HEAD does not hold, a
   modified .dvc file/.gitignore, and markers of batches that never reached a commit. Such a batch was
   never reported ingested (success is reported only after the commit), so dropping it is safe: the
   retry adds it again. Completing it instead would commit rows nobody validated in this run.
2. The rows are checked (duplicates, conflicts) against an index of the rows COMMITTED at HEAD, never
   the work tree, so an orphan part cannot make a retry say "duplicate".
3. A pending marker (in .git/, untracked) is written, then the part, `dvc add`, `git commit` (the
   message carries the batch's content hash) and `dvc push`. Any failure before the commit rolls the
   work tree back to HEAD.

A registry with one `data.dvc` for all datasets (written before per-dataset versions) is migrated to one
`data/<dataset>.dvc` per dataset by the first write (`migrate`), in a commit of its own.

Labels that arrive later (`append_labels`) go through the same steps as a `labels-*.parquet` part of
the dataset, so they are a new data version of that dataset only.

The marker stays until the flow has announced the batch (audit entry and event): a commit whose push,
audit entry or event failed is completed by the next ingest (`Appended.pending`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock

from adapters.dvc_registry import (
    LEGACY_DVC,
    DataVersion,
    RegistryError,
    current_version,
    dvc_file,
    dvc_md5,
    dvc_output_to_stderr,
    ensure_registry,
    frame_md5,
    git_run,
    out_md5,
    raise_if_objects_missing,
    read_dataset,
)
from evergreen.batch_checks import BatchCheck, check_rows, empty_index, index_rows
from evergreen.faults import fault_point
from evergreen.labels import LabelCheck, check_labels, labels_hash
from evergreen.settings import Settings
from evergreen.spec import ModelSpec

logger = logging.getLogger(__name__)

BATCH_TRAILER = "Evergreen-Batch"
MIGRATION_MESSAGE = "migrate registry: one .dvc file per dataset"


@dataclass(frozen=True)
class Pending:
    """A batch being committed (rev None) or committed but not yet announced."""

    batch: str  # order-insensitive content hash of the received batch
    model: str
    dataset: str
    source: str
    rows: int  # rows appended (the new ones)
    total_rows: int  # dataset rows after the commit
    created: bool
    checks: dict[str, Any] = field(default_factory=dict)
    rev: str | None = None
    md5: str | None = None
    kind: str = "rows"  # "rows" (a part-*.parquet) or "labels" (a labels-*.parquet)

    def version(self) -> DataVersion:
        assert self.rev is not None and self.md5 is not None
        return DataVersion(rev=self.rev, md5=self.md5, path=f"data/{self.dataset}", rows=self.total_rows)


@dataclass(frozen=True)
class Appended:
    check: BatchCheck
    batch: str
    version: DataVersion | None  # HEAD's version of the dataset (None: it has no rows yet)
    pending: tuple[Pending, ...]  # committed, unannounced batches of this model (this one included)


def batch_hash(frame: pd.DataFrame, spec: ModelSpec) -> str:
    """A content hash of the batch's distinct rows, whatever their order or file format."""
    pairs = index_rows(frame, spec).sort_values(["key", "content"]).to_numpy(dtype="uint64")
    return hashlib.sha256(pairs.tobytes()).hexdigest()[:32]


# --- pending markers ---------------------------------------------------------------------------------


def _pending_dir(root: Path) -> Path:
    return root / ".git" / "evergreen-pending"


def read_pending(root: Path) -> list[Pending]:
    folder = _pending_dir(root)
    if not folder.is_dir():
        return []
    return [Pending(**json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]


def _write_pending(root: Path, marker: Pending) -> None:
    folder = _pending_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{marker.batch}.tmp"
    tmp.write_text(json.dumps(asdict(marker), default=str))
    tmp.replace(folder / f"{marker.batch}.json")  # atomic: a reader sees the old or the new marker


def clear_pending(settings: Settings, batch: str) -> None:
    """The batch is announced: forget its marker."""
    (_pending_dir(Path(settings.registry_path)) / f"{batch}.json").unlink(missing_ok=True)


# --- recovery ----------------------------------------------------------------------------------------


def _head(root: Path) -> str | None:
    out = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=root, capture_output=True, text=True
    )
    return out.stdout.strip() or None


def _show(root: Path, rev: str, path: str) -> bytes | None:
    out = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=root, capture_output=True)
    return out.stdout if out.returncode == 0 else None


def _tracked(root: Path, rev: str) -> list[str]:
    """The .dvc and .gitignore files of data/ (and the legacy top-level ones) committed at `rev`."""
    out = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", rev, "--", LEGACY_DVC, ".gitignore", "data"],
        cwd=root, capture_output=True, text=True,
    )  # fmt: skip
    return [n for n in out.stdout.split() if n.endswith((".dvc", ".gitignore"))]


def _work_files(root: Path) -> list[str]:
    """The same kind of files in the work tree (a crashed `dvc add` may have left new ones)."""
    found = [n for n in (LEGACY_DVC, ".gitignore") if (root / n).exists()]
    data = root / "data"
    if data.is_dir():
        found += [p.relative_to(root).as_posix() for p in data.rglob("*.dvc")]
        found += [p.relative_to(root).as_posix() for p in data.rglob(".gitignore")]
    return found


def committed_parts(settings: Settings, rev: str) -> set[str]:
    """Paths (relative to the registry) of the parquet parts the commit `rev` holds."""
    from dvc.api import DVCFileSystem

    if not any(n.endswith(".dvc") for n in _tracked(Path(settings.registry_path), rev)):
        return set()
    fs = DVCFileSystem(settings.registry_path, rev=rev)
    raise_if_objects_missing(fs, rev, settings)
    return {p.lstrip("/") for p in fs.find("data") if p.endswith(".parquet")}


def _commit_of(root: Path, batch: str) -> str | None:
    """The commit whose message carries this batch's trailer (None: it never committed)."""
    out = subprocess.run(
        ["git", "log", "-1", "--format=%H", "--fixed-strings", f"--grep={BATCH_TRAILER}: {batch}", "HEAD"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or None


def recover(settings: Settings, root: Path) -> None:
    """Bring the work tree back to HEAD and settle markers (see module docstring for why)."""
    head = _head(root)
    kept = committed_parts(settings, head) if head else set()
    for part in (root / "data").rglob("*.parquet"):
        rel = part.relative_to(root).as_posix()
        if rel not in kept:
            logger.warning("removing %s: written by an ingest that never committed it", rel)
            part.unlink()
    files = sorted(set(_tracked(root, head) if head else []) | set(_work_files(root)))
    for name in files:
        committed = _show(root, head, name) if head else None
        path = root / name
        if committed is None:
            path.unlink(missing_ok=True)
        elif not path.exists() or path.read_bytes() != committed:
            path.write_bytes(committed)
    staged = subprocess.run(["git", "diff", "--cached", "--quiet", "--", *files], cwd=root)
    if files and staged.returncode != 0:  # best effort: a held index.lock fails the next commit loudly
        subprocess.run(["git", "reset", "-q", "--", *files], cwd=root, capture_output=True)
    for marker in read_pending(root):
        rev = _commit_of(root, marker.batch)
        if rev is None:
            (_pending_dir(root) / f"{marker.batch}.json").unlink(missing_ok=True)
        elif marker.rev is None:  # crashed between the commit and the marker update
            _write_pending(root, replace(marker, rev=rev, md5=_md5_at(root, rev, marker.dataset)))


def _md5_at(root: Path, rev: str, dataset: str) -> str:
    text = _show(root, rev, dvc_file(dataset)) or _show(root, rev, LEGACY_DVC) or b""
    return out_md5(text)


# --- migration ---------------------------------------------------------------------------------------


def _datasets_in(data: Path) -> list[Path]:
    """Dataset folders: those holding parquet parts directly (a dataset path may be nested)."""
    return sorted({p.parent for p in data.rglob("*.parquet")})


def migrate(settings: Settings, root: Path) -> bool:
    """One data.dvc for all of data/ -> one data/<dataset>.dvc per dataset, in a commit of its own.

    The parts and their md5s do not change, so DVC's cache and remote already hold every file; old
    revs keep data.dvc and still read back. Runs under the registry lock, after `recover`."""
    from dvc.repo import Repo

    if not (root / LEGACY_DVC).exists():
        return False
    with dvc_output_to_stderr(), Repo(str(root)) as repo:
        try:
            repo.checkout(targets=[str(root / LEGACY_DVC)])  # a fresh clone has no parts in its work tree
        except Exception:  # noqa: BLE001  not in the cache: fetch them from the remote
            repo.pull(targets=[str(root / LEGACY_DVC)])
        folders = _datasets_in(root / "data")
        repo.remove(str(root / LEGACY_DVC))  # the .dvc file and its .gitignore entry; the data stays
        for folder in folders:
            repo.add(str(folder))
    git_run(root, "add", "-A", "--", LEGACY_DVC, ".gitignore", "data")
    names = ", ".join(f.relative_to(root / "data").as_posix() for f in folders) or "no datasets"
    git_run(root, "commit", "-q", "-m", f"{MIGRATION_MESSAGE} ({names})", settings=settings)
    push(root)
    logger.warning("migrated the data registry %s to one .dvc file per dataset (%s)", root, names)
    return True


# --- the append --------------------------------------------------------------------------------------


def _committed_rows(
    settings: Settings, dataset: str, head: str | None, *, with_labels: bool = False
) -> pd.DataFrame | None:
    """The rows committed at HEAD (as ingested, without delayed labels unless asked); None: no dataset."""
    if head is None:
        return None
    if not any(p.startswith(f"data/{dataset}/part-") for p in committed_parts(settings, head)):
        return None
    return read_dataset(settings, dataset, head, with_labels=with_labels)[0]


def _commit(settings: Settings, root: Path, rows: pd.DataFrame, marker: Pending) -> Pending:
    """Write the part, `dvc add`, `git commit`; on any failure before the commit, roll back."""
    from dvc.repo import Repo

    _write_pending(root, marker)
    folder = root / "data" / marker.dataset
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    prefix, what = ("labels", "labels") if marker.kind == "labels" else ("part", "rows")
    try:
        rows.to_parquet(folder / f"{prefix}-{stamp}-{frame_md5(rows)[:12]}.parquet", index=False)
        fault_point("ingest:after-write")
        try:
            with dvc_output_to_stderr(), Repo(str(root)) as repo:
                repo.add(str(folder))
        except Exception as exc:  # DVC raises many types; all mean "not added"
            raise RegistryError(f"dvc add failed in {root}: {exc}") from exc
        git_run(root, "add", "--", *_work_files(root))
        msg = (
            f"ingest {marker.model}: {marker.rows} {what} into data/{marker.dataset} from "
            f"{Path(marker.source).name}\n\n{BATCH_TRAILER}: {marker.batch}\n"
        )
        git_run(root, "commit", "-q", "-m", msg, settings=settings)
    except BaseException as exc:
        try:
            recover(settings, root)
        except Exception as undo:  # noqa: BLE001  the next ingest recovers again; report the first error
            logger.warning("could not roll back the failed ingest yet (%s); the next ingest will", undo)
        if isinstance(exc, RegistryError):
            raise RegistryError(f"{exc} -- nothing committed, batch not ingested; retry it") from exc
        raise
    fault_point("ingest:after-commit")
    rev = git_run(root, "rev-parse", "HEAD")
    done = replace(marker, rev=rev, md5=dvc_md5(root, marker.dataset))
    _write_pending(root, done)
    return done


def push(root: Path) -> None:
    from dvc.repo import Repo

    try:
        with dvc_output_to_stderr(), Repo(str(root)) as repo:
            repo.push()
    except Exception as exc:  # noqa: BLE001  the marker stays: the next ingest pushes again
        raise RegistryError(
            f"dvc push from {root} failed: {exc} -- the batch is committed; re-run the ingest to push it"
        ) from exc


def append_batch(
    settings: Settings, spec: ModelSpec, batch: pd.DataFrame, *, source: str, model: str
) -> Appended:
    """Check `batch` against the committed rows and commit its new rows (see module docstring)."""
    root = ensure_registry(settings)
    dataset = spec.data.path
    with FileLock(str(root) + ".lock", timeout=600):
        recover(settings, root)
        migrate(settings, root)
        history = _committed_rows(settings, dataset, _head(root))
        index = empty_index() if history is None else index_rows(history, spec)
        check = check_rows(batch, index, spec)
        digest = batch_hash(batch, spec)
        if check.ok:
            marker = Pending(
                batch=digest,
                model=model,
                dataset=dataset,
                source=source,
                rows=len(check.rows),
                total_rows=(0 if history is None else len(history)) + len(check.rows),
                created=history is None,
                checks=check.as_dict(),
            )
            _commit(settings, root, check.rows, marker)
        pending = tuple(p for p in read_pending(root) if p.model == model and p.rev is not None)
        if pending:
            push(root)
        version = current_version(settings, dataset) if (history is not None or check.ok) else None
        return Appended(check=check, batch=digest, version=version, pending=pending)


@dataclass(frozen=True)
class AppendedLabels:
    check: LabelCheck
    batch: str
    version: DataVersion | None
    pending: tuple[Pending, ...]


def append_labels(
    settings: Settings, spec: ModelSpec, labels: pd.DataFrame, *, source: str, model: str
) -> AppendedLabels:
    """Check delayed labels against the committed rows and commit the new ones as a labels part.

    The same lock, recovery, marker, commit and push as `append_batch`: a new version of this dataset."""
    root = ensure_registry(settings)
    dataset = spec.data.path
    with FileLock(str(root) + ".lock", timeout=600):
        recover(settings, root)
        migrate(settings, root)
        rows = _committed_rows(settings, dataset, _head(root), with_labels=True)
        if rows is None:
            rows = pd.DataFrame(columns=spec.columns)
        check = check_labels(labels, rows, spec)
        labelled = int(rows[spec.data.target].notna().sum())
        digest = labels_hash(labels, spec) if check.status != "rejected" else ""
        if check.ok:
            marker = Pending(
                batch=digest, model=model, dataset=dataset, source=source, rows=len(check.labels),
                total_rows=len(rows), created=False, kind="labels",
                checks={**check.as_dict(), "labelled_rows": labelled + len(check.labels)},
            )  # fmt: skip
            _commit(settings, root, check.labels, marker)
        pending = tuple(p for p in read_pending(root) if p.model == model and p.rev is not None)
        if pending:
            push(root)
        version = current_version(settings, dataset) if not rows.empty else None
        return AppendedLabels(check=check, batch=digest, version=version, pending=pending)
