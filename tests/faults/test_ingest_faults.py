"""Issue 9 cases 1-4: ingest under faults and bad input, on real parts.

Real git+DVC registry (a fresh one per test under EVERGREEN_HOME), real MLflow and Prefect servers
(tests/support/servers.py), real GX. Faults: a held git index.lock, SIGKILL of an ingest subprocess at
a chosen point (EVERGREEN_FAULT, adapters/dvc_ingest.py), an unreachable MLflow URI.

After each case the DESIGN.md invariant "every batch reported ingested is in the registry, exactly
once" is checked at HEAD (rows counted by key), with no orphan parts, no pending announcement, and one
`evergreen.data.ingested` event and one ingest audit entry per committed batch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from adapters import audit_log, dvc_ingest, dvc_registry
from evergreen.audit import Action
from evergreen.settings import get_settings
from tests.faults.invariants import assert_batches_once
from tests.support.builders import ROOT, elec2_spec_dict, elec2_weeks, write_batch, write_spec

pytestmark = [pytest.mark.slow, pytest.mark.faults]

INGESTED = "evergreen.data.ingested"
REJECTED = "evergreen.data.rejected"
SEED_WEEKS = 2


@pytest.fixture(scope="module")
def weeks() -> list[pd.DataFrame]:
    return elec2_weeks()


@pytest.fixture
def model(prefect_server, mlflow_server, stack_env, tmp_path, monkeypatch, weeks) -> str:
    """A fresh registry with the first SEED_WEEKS weeks ingested, under a model name of its own."""
    from flows.ingest import ingest

    monkeypatch.chdir(ROOT)
    stack_env(prefect=prefect_server, mlflow=mlflow_server, home=tmp_path / "home")
    # Fail fast when MLflow is unreachable (case 2): MLflow's client would otherwise retry for minutes.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    name = f"elec2-{tmp_path.name[-6:].lower().replace('_', '-')}"
    write_spec(tmp_path / "models", elec2_spec_dict(name))
    monkeypatch.setenv("EVERGREEN_MODELS_DIR", str(tmp_path / "models"))
    seed = ingest(model=name, path=write_batch(pd.concat(weeks[:SEED_WEEKS]), tmp_path / "seed.csv"))
    assert seed["status"] == "ingested" and seed["rows"] == 336 * SEED_WEEKS
    return name


def _root() -> Path:
    return Path(get_settings().registry_path)


def _head() -> str:
    return dvc_registry.resolve_rev(get_settings(), None)


def _cli_ingest(model: str, path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    code = "from cli.main import main; main()"
    args = [sys.executable, "-c", code, "ingest", model, str(path)]
    return subprocess.run(
        args, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )


def _wait_events(api: str, model: str, name: str, count: int) -> list[dict]:
    from tests.support.prefect_events import wait_events

    return wait_events(api, model, [name], count)


def test_held_git_lock_then_retry(model, weeks, tmp_path, prefect_server):
    """Case 1a: a held .git/index.lock fails the ingest with nothing committed; the retry ingests it."""
    from flows.ingest import ingest

    head = _head()
    lock = _root() / ".git" / "index.lock"
    lock.touch()
    batch = write_batch(weeks[SEED_WEEKS], tmp_path / "w.csv")
    with pytest.raises(dvc_registry.RegistryError, match="index.lock"):
        ingest(model=model, path=batch)
    assert _head() == head
    lock.unlink()
    again = ingest(model=model, path=batch)
    assert again["status"] == "ingested" and again["rows"] == 336 and again["data_rev"] == _head()
    _wait_events(prefect_server.api_url, model, INGESTED, 2)
    assert_batches_once(model, pd.concat(weeks[: SEED_WEEKS + 1]), prefect_server.api_url)


@pytest.mark.parametrize("point", ["after-write", "after-commit"])
def test_sigkill_during_ingest_then_retry(model, weeks, tmp_path, prefect_server, point):
    """Case 1b: SIGKILL after the part is written (nothing committed) or after the commit (announcement
    pending); the retry completes the batch exactly once, and the next batch does not carry an orphan."""
    from flows.ingest import ingest

    head = _head()
    batch = write_batch(weeks[SEED_WEEKS], tmp_path / "w.csv")
    killed = _cli_ingest(model, batch, EVERGREEN_FAULT=f"ingest:{point}")
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert (_head() == head) is (point == "after-write")
    again = ingest(model=model, path=batch)
    assert again["status"] == "ingested" and again["rows"] == 336 and again["data_rev"] == _head()
    nxt = ingest(model=model, path=write_batch(weeks[SEED_WEEKS + 1], tmp_path / "w2.csv"))
    assert nxt["status"] == "ingested" and nxt["rows"] == 336
    assert nxt["total_rows"] == 336 * (SEED_WEEKS + 2)
    _wait_events(prefect_server.api_url, model, INGESTED, 3)
    assert_batches_once(model, pd.concat(weeks[: SEED_WEEKS + 2]), prefect_server.api_url)


def test_mlflow_unreachable_then_retry(model, weeks, tmp_path, prefect_server, mlflow_server, monkeypatch):
    """Case 2: MLflow down after the commit: one clear error, batch committed and pushed, announcement
    pending; the retry (MLflow back) emits the event and writes the audit entry once."""
    from flows.ingest import IngestIncomplete, ingest

    batch = write_batch(weeks[SEED_WEEKS], tmp_path / "w.csv")
    down = {var: "http://127.0.0.1:9" for var in ("MLFLOW_TRACKING_URI", "EVERGREEN_MLFLOW_TRACKING_URI")}
    result = _cli_ingest(model, Path(batch), **down)  # the user's view: exit 1, one error line
    assert result.returncode == 1, result.stderr[-2000:]
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "127.0.0.1:9" in error and "pending" in error and "re-run" in error
    for var, value in down.items():  # and in-process: the flow's own exception
        monkeypatch.setenv(var, value)
    with pytest.raises(IngestIncomplete, match="127.0.0.1:9"):
        ingest(model=model, path=batch)
    (pending,) = dvc_ingest.read_pending(_root())
    assert pending.rev == _head() and pending.rows == 336
    for var in ("MLFLOW_TRACKING_URI", "EVERGREEN_MLFLOW_TRACKING_URI"):
        monkeypatch.setenv(var, mlflow_server.url)
    again = ingest(model=model, path=batch)
    assert again["status"] == "ingested" and again["data_rev"] == pending.rev
    dup = ingest(model=model, path=batch)  # announced now: a third send is a plain duplicate
    assert dup["status"] == "duplicate"
    _wait_events(prefect_server.api_url, model, INGESTED, 2)
    assert_batches_once(model, pd.concat(weeks[: SEED_WEEKS + 1]), prefect_server.api_url)


def test_empty_and_future_batches_rejected(model, weeks, tmp_path, prefect_server):
    """Case 3: a header-only CSV and a week with a 2030 row are refused (exit 2), quarantined, announced."""
    from flows.ingest import BatchRejected, ingest

    head = _head()
    empty = tmp_path / "empty.csv"
    weeks[0].iloc[0:0].to_csv(empty, index=False)
    future = weeks[SEED_WEEKS].copy()
    future.loc[future.index[-1], "timestamp"] = pd.Timestamp("2030-01-01")
    future_path = write_batch(future, tmp_path / "future.csv")
    with pytest.raises(BatchRejected, match="empty batch"):
        ingest(model=model, path=str(empty))
    with pytest.raises(BatchRejected, match="2030"):
        ingest(model=model, path=future_path)
    assert _head() == head and not empty.exists() and not Path(future_path).exists()
    quarantined = list((get_settings().quarantine_dir / model).glob("*.report.json"))
    assert len(quarantined) == 2
    assert len(_wait_events(prefect_server.api_url, model, REJECTED, 2)) == 2
    assert len(audit_log.read(get_settings(), model, action=Action.REJECT_BATCH)) == 2
    result = _cli_ingest(model, write_batch(weeks[0].iloc[0:0], tmp_path / "empty2.csv"))
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")][0].count(
        "empty batch"
    ) == 1
    assert_batches_once(model, pd.concat(weeks[:SEED_WEEKS]), prefect_server.api_url)


def test_row_level_duplicates_and_conflicts(model, weeks, tmp_path, prefect_server):
    """Case 4: a shuffled copy is a duplicate, a half-overlap appends only its new rows, flipped labels
    are refused as conflicts."""
    from flows.ingest import BatchRejected, ingest

    shuffled = weeks[0].sample(frac=1, random_state=3)
    dup = ingest(model=model, path=write_batch(shuffled, tmp_path / "shuffled.parquet"))
    assert dup["status"] == "duplicate" and dup["checks"]["counts"]["duplicates_of_history"] == 336
    overlap = pd.concat([weeks[SEED_WEEKS - 1].iloc[168:], weeks[SEED_WEEKS].iloc[:168]])
    half = ingest(model=model, path=write_batch(overlap, tmp_path / "overlap.csv"))
    assert half["status"] == "ingested" and half["rows"] == 168
    assert half["checks"]["counts"] == {
        "received": 336, "duplicates_in_batch": 0, "duplicates_of_history": 168,
        "conflicts": 0, "conflicting_keys": 0, "new": 168,
    }  # fmt: skip
    flipped = weeks[0].copy()
    flipped["class"] = flipped["class"].map({"UP": "DOWN", "DOWN": "UP"})
    with pytest.raises(BatchRejected, match="conflict"):
        ingest(model=model, path=write_batch(flipped, tmp_path / "flipped.csv"))
    _wait_events(prefect_server.api_url, model, INGESTED, 2)
    _wait_events(prefect_server.api_url, model, REJECTED, 1)
    expected = pd.concat([*weeks[:SEED_WEEKS], weeks[SEED_WEEKS].iloc[:168]])
    assert_batches_once(model, expected, prefect_server.api_url)
