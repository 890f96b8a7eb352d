"""adapters.dvc_ingest on a real local git+DVC registry (no servers): rows checked against HEAD,
leftovers of a crashed ingest rolled back, pending markers settled (issue 9 case 1)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest

from adapters import dvc_ingest, dvc_registry
from evergreen.settings import get_settings
from evergreen.spec import ModelSpec


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EVERGREEN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EVERGREEN_DATA_REPO", raising=False)
    monkeypatch.delenv("EVERGREEN_DVC_REMOTE", raising=False)
    return dvc_registry.ensure_registry(get_settings())


def _append(spec: ModelSpec, frame: pd.DataFrame, source: str = "b.csv") -> dvc_ingest.Appended:
    return dvc_ingest.append_batch(get_settings(), spec, frame, source=source, model="m")


def test_batch_hash_ignores_order_and_sees_content(elec2: pd.DataFrame, elec2_spec: ModelSpec) -> None:
    week = elec2.iloc[:336]
    assert dvc_ingest.batch_hash(week, elec2_spec) == dvc_ingest.batch_hash(week.sample(frac=1), elec2_spec)
    assert dvc_ingest.batch_hash(week, elec2_spec) != dvc_ingest.batch_hash(week.iloc[:335], elec2_spec)


def test_orphan_part_is_rolled_back_and_batch_committed(
    registry: Path, elec2: pd.DataFrame, elec2_spec: ModelSpec
) -> None:
    first = _append(elec2_spec, elec2.iloc[:336])
    assert first.check.ok and len(first.pending) == 1 and first.pending[0].rev is not None
    dvc_ingest.clear_pending(get_settings(), first.batch)
    head = dvc_registry.resolve_rev(get_settings(), None)
    # A crashed ingest: its part is in the work tree, never committed.
    orphan = registry / "data" / "elec2" / "part-orphan-000000000000.parquet"
    elec2.iloc[336:672].to_parquet(orphan, index=False)
    second = _append(elec2_spec, elec2.iloc[336:672])  # the retry of that batch: new, not "duplicate"
    assert second.check.ok and second.check.counts.new == 336
    assert not orphan.exists()
    (pending,) = second.pending
    assert pending.rev != head and pending.total_rows == 672 and pending.rows == 336
    msg = subprocess.run(["git", "log", "-1", "--format=%B"], cwd=registry, capture_output=True, text=True)
    assert f"{dvc_ingest.BATCH_TRAILER}: {second.batch}" in msg.stdout
    frame, version = dvc_registry.read_dataset(get_settings(), "elec2", None)
    assert len(frame) == 672 and frame["timestamp"].is_unique and version.rev == pending.rev


def test_retry_of_committed_batch_is_pending_not_silent(
    registry: Path, elec2: pd.DataFrame, elec2_spec: ModelSpec
) -> None:
    first = _append(elec2_spec, elec2.iloc[:336])
    again = _append(elec2_spec, elec2.iloc[:336].sample(frac=1, random_state=1))
    assert again.check.status == "duplicate"
    assert [p.batch for p in again.pending] == [first.batch]  # still unannounced: the flow completes it
    dvc_ingest.clear_pending(get_settings(), first.batch)
    assert _append(elec2_spec, elec2.iloc[:336]).pending == ()


def test_failed_commit_leaves_nothing(registry: Path, elec2: pd.DataFrame, elec2_spec: ModelSpec) -> None:
    _append(elec2_spec, elec2.iloc[:336])
    head = dvc_registry.resolve_rev(get_settings(), None)
    lock = registry / ".git" / "index.lock"
    lock.touch()
    with pytest.raises(dvc_registry.RegistryError, match="index.lock"):
        _append(elec2_spec, elec2.iloc[336:672])
    lock.unlink()
    assert dvc_registry.resolve_rev(get_settings(), None) == head
    assert len(list((registry / "data" / "elec2").glob("part-*.parquet"))) == 1
    assert [p.rev for p in dvc_ingest.read_pending(registry)] == [head]  # only the first, unannounced
    status = subprocess.run(["git", "status", "--porcelain"], cwd=registry, capture_output=True, text=True)
    assert status.stdout.strip() == ""


def _other(spec: ModelSpec) -> ModelSpec:
    """The same schema under another dataset path: a second model of the registry."""
    return spec.model_copy(update={"data": spec.data.model_copy(update={"path": "other"})})


def test_each_dataset_has_its_own_version(registry: Path, elec2: pd.DataFrame, elec2_spec: ModelSpec) -> None:
    """One dataset's ingest leaves every other dataset's data_version unchanged; a pin reads back exactly."""
    settings = get_settings()
    other = _other(elec2_spec)
    _append(elec2_spec, elec2.iloc[:336])
    _append(other, elec2.iloc[:336])
    pinned_frame, pinned = dvc_registry.read_dataset(settings, "elec2", None)
    other_version = dvc_registry.current_version(settings, "other")
    assert (registry / "data" / "elec2.dvc").is_file() and (registry / "data" / "other.dvc").is_file()
    assert not (registry / "data.dvc").exists()
    assert pinned.rev != dvc_registry.resolve_rev(settings, None)  # HEAD is the other dataset's commit

    _append(elec2_spec, elec2.iloc[336:672])  # more for the same dataset ...
    assert dvc_registry.current_version(settings, "other") == other_version  # ... leaves the other's alone
    _append(other, elec2.iloc[336:672])  # ... and more for the other one
    again, version = dvc_registry.read_dataset(settings, "elec2", pinned.rev)
    assert version.id == pinned.id
    pd.testing.assert_frame_equal(again, pinned_frame)
    later, head_version = dvc_registry.read_dataset(settings, "elec2", None)
    assert len(later) == 672 and head_version.id != pinned.id
    # HEAD moved with the other dataset's ingest, the elec2 version did not
    assert dvc_registry.read_dataset(settings, "elec2", None)[1].id == head_version.id


def _legacy_registry(root: Path, frames: dict[str, pd.DataFrame]) -> str:
    """Write the pre-migration layout by hand: one data.dvc for all of data/."""
    from dvc.repo import Repo

    for name, frame in frames.items():
        (root / "data" / name).mkdir(parents=True, exist_ok=True)
        frame.to_parquet(root / "data" / name / "part-legacy-000000000000.parquet", index=False)
    with Repo(str(root)) as repo:
        repo.add(str(root / "data"))
        repo.push()
    subprocess.run(["git", "add", "data.dvc", ".gitignore"], cwd=root, check=True)
    dvc_registry.git_run(root, "commit", "-q", "-m", "legacy", settings=get_settings())
    return dvc_registry.resolve_rev(get_settings(), None)


def test_legacy_registry_is_migrated_by_the_next_ingest(
    registry: Path, elec2: pd.DataFrame, elec2_spec: ModelSpec
) -> None:
    settings = get_settings()
    legacy = _legacy_registry(registry, {"elec2": elec2.iloc[:336], "other": elec2.iloc[336:672]})
    old_frame, old_version = dvc_registry.read_dataset(settings, "elec2", legacy)
    assert old_version.rev == legacy and len(old_frame) == 336  # a legacy rev reads as before

    _append(elec2_spec, elec2.iloc[672:1008])
    assert not (registry / "data.dvc").exists()
    assert (registry / "data" / "elec2.dvc").is_file() and (registry / "data" / "other.dvc").is_file()
    log = subprocess.run(["git", "log", "--format=%s"], cwd=registry, capture_output=True, text=True)
    assert log.stdout.splitlines()[1].startswith(dvc_ingest.MIGRATION_MESSAGE)
    frame, _ = dvc_registry.read_dataset(settings, "elec2", None)
    assert len(frame) == 672
    other, other_version = dvc_registry.read_dataset(settings, "other", None)
    pd.testing.assert_frame_equal(other, elec2.iloc[336:672].reset_index(drop=True))
    assert other_version.rev == dvc_registry.resolve_rev(settings, "HEAD~1")  # the migration commit
    # the old pin still reads back exactly
    pd.testing.assert_frame_equal(dvc_registry.read_dataset(settings, "elec2", legacy)[0], old_frame)
    status = subprocess.run(["git", "status", "--porcelain"], cwd=registry, capture_output=True, text=True)
    assert status.stdout.strip() == ""


def _delayed(spec: ModelSpec) -> ModelSpec:
    raw = spec.model_dump(mode="json")
    raw["data"]["delayed_labels"] = {"id_column": "row_id"}
    return ModelSpec.model_validate(raw)


def test_delayed_labels_are_a_new_version_of_their_dataset(
    registry: Path, elec2: pd.DataFrame, elec2_spec: ModelSpec
) -> None:
    settings = get_settings()
    spec = _delayed(elec2_spec)
    week = elec2.iloc[:336].assign(row_id=range(336))
    unlabelled = week.assign(**{"class": None})
    first = _append(spec, unlabelled)
    assert first.check.ok
    rows, before = dvc_registry.read_dataset(settings, "elec2", None)
    assert rows["class"].isna().all() and len(rows) == 336

    _append(_other(elec2_spec), elec2.iloc[:336])  # another dataset moves HEAD ...
    labels = week[["row_id", "class"]].iloc[:200]
    done = dvc_ingest.append_labels(settings, spec, labels, source="l.csv", model="m")
    assert done.check.ok and done.check.counts.new == 200
    (marker,) = [p for p in done.pending if p.kind == "labels"]
    assert marker.checks["labelled_rows"] == 200 and marker.total_rows == 336
    labelled, after = dvc_registry.read_dataset(settings, "elec2", None)
    assert after.rev == marker.rev and after.id != before.id
    pd.testing.assert_series_equal(
        labelled["class"].iloc[:200], week["class"].iloc[:200].reset_index(drop=True), check_dtype=False
    )
    assert labelled["class"].iloc[200:].isna().all()
    # ... and the pin before the labels still reads back unlabelled
    assert dvc_registry.read_dataset(settings, "elec2", before.rev)[0]["class"].isna().all()
    assert dvc_registry.read_dataset(settings, "elec2", None, with_labels=False)[0]["class"].isna().all()

    again = dvc_ingest.append_labels(settings, spec, labels.sample(frac=1), source="l.csv", model="m")
    assert again.check.status == "duplicate"
    flipped = labels.assign(**{"class": labels["class"].map({"UP": "DOWN", "DOWN": "UP"})})
    refused = dvc_ingest.append_labels(settings, spec, flipped, source="f.csv", model="m")
    assert refused.check.status == "rejected" and "conflict" in refused.check.reasons[0]
    assert dvc_registry.read_dataset(settings, "elec2", None)[1].id == after.id
    # re-sending the unlabelled batch is a duplicate, not a conflict with its later labels
    assert _append(spec, unlabelled).check.status == "duplicate"


def test_orphan_labels_part_and_dvc_file_are_rolled_back(
    registry: Path, elec2: pd.DataFrame, elec2_spec: ModelSpec
) -> None:
    """A labels ingest killed after writing its part (and a stray .dvc of a dataset never committed)."""
    settings = get_settings()
    spec = _delayed(elec2_spec)
    week = elec2.iloc[:336].assign(row_id=range(336))
    _append(spec, week.assign(**{"class": None}))
    head = dvc_registry.resolve_rev(settings, None)
    orphan = registry / "data" / "elec2" / "labels-orphan-000000000000.parquet"
    week[["row_id", "class"]].to_parquet(orphan, index=False)
    stray = registry / "data" / "ghost.dvc"
    stray.write_text("outs:\n- md5: 0\n  path: ghost\n")
    done = dvc_ingest.append_labels(
        settings, spec, week[["row_id", "class"]].iloc[:10], source="l.csv", model="m"
    )
    assert done.check.ok and done.check.counts.new == 10  # the orphan's labels were never committed
    assert not orphan.exists() and not stray.exists()
    frame, version = dvc_registry.read_dataset(settings, "elec2", None)
    assert int(frame["class"].notna().sum()) == 10 and version.rev != head
