"""Issue 9 "What to build" 7: a seeded random soak of Elec2 weekly batches with faults, on real servers.

Each step sends one batch through `python -m cli.main ingest` (a subprocess, as a user would; clean
batches call the ingest flow in-process, to save a CLI start) in one of
several shapes: clean; SIGKILLed at a fault point then retried; sent while MLflow is unreachable then
retried; or a duplicate, overlapping, conflicting, future-dated or empty batch. Then, sometimes, an
operation: a retrain (sometimes SIGKILLed after registering or after the alias move and then re-run; or
two racing at once), a rollback, or a retrain/rollback pointed at a closed MLflow port (it must fail with
one `error:` line and change nothing). The soak tracks every row reported ingested, every rejection and
every version, checks the invariants (tests/faults/invariants.py) every CHECK_EVERY steps and at the
end, and prints one line per step.

Size and seed: `EVERGREEN_SOAK_BATCHES` (default 5: `make test`) and `EVERGREEN_SOAK_SEED` (default: a
fresh seed, printed). `make soak` runs 100 batches. Runs of fewer than KILL_MIN_BATCHES batches leave
out the retrain kills, whose recovery waits out the dead run's lock lease (~75 s), as `make test` leaves
out the faults_full tests.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from adapters import audit_log, dvc_registry
from evergreen.audit import Action
from evergreen.settings import get_settings
from tests.faults import invariants as inv
from tests.support.builders import ROOT, elec2_weeks, write_batch

BATCHES = int(os.environ.get("EVERGREEN_SOAK_BATCHES", "5"))
SEED_ENV = os.environ.get("EVERGREEN_SOAK_SEED")
SEED = int(SEED_ENV) if SEED_ENV else random.SystemRandom().randrange(1, 10**6)
SEED_WEEKS = 10  # ingested (one batch) and trained on before the soak starts
CHECK_EVERY = 10
KILL_MIN_BATCHES = 20
OP_SHARE = 0.25  # share of steps followed by an operation (retrain, rollback, ...)
CLOSED = "http://127.0.0.1:9"  # nothing listens on the discard port
REFIT_OFF = ("--set", "training.refit=false")  # one fit per retrain: cheaper, and more promotions

pytestmark = [
    pytest.mark.slow,
    pytest.mark.faults,
    pytest.mark.timeout(max(900, 120 * BATCHES)),
]

BATCH_KINDS = {  # kind: weight
    "clean": 40,
    "kill-ingest": 12,
    "mlflow-down-ingest": 5,
    "duplicate": 8,
    "overlap": 8,
    "conflict": 7,
    "future": 6,
    "empty": 4,
}
OPS = {
    "retrain": 45,
    "retrain-unforced": 8,
    "kill-retrain": 10,
    "race": 10,
    "rollback": 17,
    "mlflow-down-op": 10,
}


@dataclass
class Proc:
    rc: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        return json.loads(self.out[self.out.index("{") :])

    def errors(self) -> list[str]:
        return [ln for ln in self.err.splitlines() if ln.startswith("error:")]

    def why(self) -> str:
        return f"rc={self.rc}\nstdout: {self.out[-1500:]}\nstderr: {self.err[-3000:]}"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "EVERGREEN_FAULT"}
    return {**env, **extra}


def _spawn(*args: str, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        env=_env(**extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait(proc: subprocess.Popen[str]) -> Proc:
    out, err = proc.communicate(timeout=900)
    return Proc(proc.returncode, out, err)


def _cli(*args: str, **extra: str) -> Proc:
    return _wait(_spawn(*args, **extra))


def _down() -> dict[str, str]:
    return {"MLFLOW_TRACKING_URI": CLOSED, "EVERGREEN_MLFLOW_TRACKING_URI": CLOSED}


@dataclass
class Soak:
    model: str
    weeks: list[pd.DataFrame]
    tmp: Path
    api_url: str
    rng: random.Random
    kills: bool
    nxt: int = SEED_WEEKS  # the next unsent week
    keys: set[pd.Timestamp] = field(default_factory=set)  # every row reported ingested
    rejected: int = 0  # batches refused and quarantined
    retrains: int = 0  # versions the soak expects (one per non-skipped or killed retrain)
    rollbacks: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    files: int = 0

    # ------------------------------------------------------------------------------------- batches

    def _file(self, frame: pd.DataFrame) -> str:
        self.files += 1
        return write_batch(frame, self.tmp / f"b{self.files:04d}.csv")

    def _ingested_week(self) -> pd.DataFrame:
        """A random week all of whose rows were reported ingested."""
        full = [w for w in self.weeks[: self.nxt] if set(w["timestamp"]) <= self.keys]
        return self.rng.choice(full).copy()

    def _expect_ingest(self, frame: pd.DataFrame, res: Proc | dict[str, Any]) -> str:
        """An accepted batch: reported rows are exactly its rows not ingested before."""
        if isinstance(res, Proc):
            assert res.rc == 0, res.why()
        out = res.json() if isinstance(res, Proc) else res
        new = set(frame["timestamp"]) - self.keys
        if not new:
            assert out["status"] == "duplicate", out
            return "duplicate"
        assert out["status"] == "ingested" and out["rows"] == len(new), (out, len(new))
        self.keys |= new
        return f"+{len(new)} rows"

    def _expect_rejected(self, res: Proc, why: str) -> str:
        assert res.rc == 2, res.why()
        (line,) = res.errors()
        assert why in line, line
        self.rejected += 1
        return "rejected"

    def _ingest(self, frame: pd.DataFrame, **extra: str) -> Proc:
        return _cli("ingest", self.model, self._file(frame), "--json", **extra)

    def batch_clean(self) -> str:
        """In-process (the flow the CLI wraps): clean batches are the commonest and a CLI start costs
        ~10 s of CPU here; every fault and bad batch goes through the CLI."""
        from flows.ingest import ingest

        week = self.weeks[self.nxt]
        self.nxt += 1
        return self._expect_ingest(week, ingest(model=self.model, path=self._file(week)))

    def batch_kill_ingest(self) -> str:
        week = self.weeks[self.nxt]
        self.nxt += 1
        point = self.rng.choice(["after-write", "after-commit"])
        path = self._file(week)
        killed = _cli("ingest", self.model, path, "--json", EVERGREEN_FAULT=f"ingest:{point}")
        assert killed.rc == -9, killed.why()
        return f"killed {point}, retry " + self._expect_ingest(
            week, _cli("ingest", self.model, path, "--json")
        )

    def batch_mlflow_down_ingest(self) -> str:
        week = self.weeks[self.nxt]
        self.nxt += 1
        path = self._file(week)
        down = _cli("ingest", self.model, path, **_down())
        assert down.rc == 1, down.why()
        (line,) = down.errors()
        assert "127.0.0.1:9" in line and "pending" in line, line
        assert "Traceback" not in down.err
        return "mlflow down: pending, retry " + self._expect_ingest(
            week, _cli("ingest", self.model, path, "--json")
        )

    def batch_duplicate(self) -> str:
        shuffled = self._ingested_week().sample(frac=1, random_state=self.rng.randrange(10**6))
        res = self._ingest(shuffled)
        assert self._expect_ingest(shuffled, res) == "duplicate", res.why()
        return "duplicate"

    def batch_overlap(self) -> str:
        last, week = self.weeks[self.nxt - 1], self.weeks[self.nxt]
        cut = self.rng.randrange(48, 289)
        frame = pd.concat([last.iloc[cut:], week.iloc[:cut]])
        return self._expect_ingest(frame, self._ingest(frame))  # only its new rows are appended

    def batch_conflict(self) -> str:
        flipped = self._ingested_week()
        rows = flipped.sample(self.rng.randrange(1, 337), random_state=self.rng.randrange(10**6)).index
        flipped.loc[rows, "class"] = flipped.loc[rows, "class"].map({"UP": "DOWN", "DOWN": "UP"})
        return self._expect_rejected(self._ingest(flipped), "conflict")

    def batch_future(self) -> str:
        week = self.weeks[self.nxt].copy()
        week.loc[week.index[self.rng.randrange(336)], "timestamp"] = pd.Timestamp("2030-01-01")
        return self._expect_rejected(self._ingest(week), "2030")

    def batch_empty(self) -> str:
        return self._expect_rejected(self._ingest(self.weeks[0].iloc[0:0]), "empty batch")

    # ---------------------------------------------------------------------------------- operations

    def _retrain_args(self, force: bool = True) -> list[str]:
        args = ["retrain", self.model, "--json", *(["--force"] if force else [])]
        return args + (list(REFIT_OFF) if self.rng.random() < 0.8 else [])

    def _expect_retrain(self, res: Proc) -> dict[str, Any]:
        assert res.rc == 0, res.why()
        out = res.json()
        assert out["status"] in ("promoted", "rejected", "skipped"), out
        if out["status"] != "skipped":
            self.retrains += 1
            assert out["version"] in inv.versions(self.model), out
        return out

    @staticmethod
    def _say(out: dict[str, Any]) -> str:
        if out["status"] == "skipped":
            return "skipped"
        return f"v{out['version']} {out['status']} ({out.get('gate_outcome', '')})"

    def op_retrain(self) -> str:
        return "retrain: " + self._say(self._expect_retrain(_cli(*self._retrain_args())))

    def op_retrain_unforced(self) -> str:
        return "retrain (cooldown applies): " + self._say(
            self._expect_retrain(_cli(*self._retrain_args(force=False)))
        )

    def op_kill_retrain(self) -> str:
        point = self.rng.choice(["after-register", "after-alias"])
        killed = _cli(*self._retrain_args(), EVERGREEN_FAULT=f"retrain:{point}")
        if killed.rc == 0 and killed.json()["status"] == "rejected" and point == "after-alias":
            self.retrains += 1  # rejected: no alias move, so the fault point was never reached
            return "kill after-alias: not reached (rejected)"
        assert killed.rc == -9, killed.why()
        self.retrains += 1  # the killed run registered its version before the kill
        # The next run waits out the dead run's lease and converges (orphan marked or record completed).
        return f"killed {point}, next run " + self._say(self._expect_retrain(_cli(*self._retrain_args())))

    def op_race(self) -> str:
        procs = [_spawn(*self._retrain_args()) for _ in range(2)]
        outs = [self._expect_retrain(_wait(p)) for p in procs]
        made = [o["version"] for o in outs]
        assert len(set(made)) == 2, outs
        previous = [o["previous_champion"] for o in outs if o["status"] == "promoted"]
        assert len(previous) == len(set(previous)), f"two promotions replaced one champion: {outs}"
        return "race: " + ", ".join(self._say(o) for o in outs)

    def op_rollback(self) -> str:
        before = inv.champion(self.model).version
        res = _cli("rollback", self.model, "--json", "--reason", "soak")
        if res.rc == 1:
            (line,) = res.errors()
            assert "no earlier champion" in line, line
            assert inv.champion(self.model).version == before
            return f"rollback refused (v{before} has no earlier gated champion)"
        assert res.rc == 0, res.why()
        out = res.json()
        assert out["from_version"] == before and inv.champion(self.model).version == out["to_version"]
        self.rollbacks += 1
        return f"rollback v{before} -> v{out['to_version']}"

    def _state(self) -> tuple[Any, ...]:
        settings = get_settings()
        entries = audit_log.read(settings, self.model)
        return (
            inv.versions(self.model),
            inv.champion(self.model).version,
            len(entries),
            dvc_registry.resolve_rev(settings, None),
        )

    def op_mlflow_down_op(self) -> str:
        before = self._state()
        cmd = self.rng.choice([self._retrain_args(), ["rollback", self.model]])
        res = _cli(*cmd, **_down())
        assert res.rc == 1, res.why()
        (line,) = res.errors()
        assert "127.0.0.1:9" in line or "MLflow" in line, line
        assert "Traceback" not in res.err
        assert self._state() == before, "a failed command changed state"
        return f"{cmd[0]} with MLflow down: {line[:70]}"

    # ---------------------------------------------------------------------------------------- loop

    def pick(self, table: dict[str, int]) -> str:
        kinds = [k for k in table if self.kills or k != "kill-retrain"]
        if self.nxt >= len(self.weeks) - 1:  # out of weeks: only batches that send no new week
            kinds = [k for k in kinds if k in ("duplicate", "conflict", "empty") or k in OPS]
        return self.rng.choices(kinds, weights=[table[k] for k in kinds])[0]

    def check(self) -> None:
        inv.assert_invariants(self.model, self.keys, self.api_url)
        assert len(inv.versions(self.model)) == self.retrains, "versions != retrains that registered one"
        quarantined = list((get_settings().quarantine_dir / self.model).glob("*.report.json"))
        assert len(quarantined) == self.rejected, "every refused batch is quarantined with its report"
        settings = get_settings()
        assert len(audit_log.read(settings, self.model, action=Action.REJECT_BATCH)) == self.rejected
        assert len(audit_log.read(settings, self.model, action=Action.ROLLBACK)) == self.rollbacks


def _baseline(soak: Soak) -> None:
    """Ten weeks in one batch and v1 promoted: the soak starts from a model with a champion."""
    seed = pd.concat(soak.weeks[:SEED_WEEKS])
    assert soak._expect_ingest(seed, soak._ingest(seed)) == f"+{len(seed)} rows"
    out = soak._expect_retrain(_cli("retrain", soak.model, "--json", *REFIT_OFF))
    assert out["status"] == "promoted", out


def test_soak(fresh_model, prefect_server, tmp_path):
    """EVERGREEN_SOAK_BATCHES batches with random faults; the invariants hold throughout and at the end."""
    print(f"\nsoak: seed {SEED} (EVERGREEN_SOAK_SEED={SEED} reproduces it), {BATCHES} batches", flush=True)
    weeks = elec2_weeks()
    soak = Soak(
        model=fresh_model("soak"),
        weeks=weeks,
        tmp=tmp_path / "batches",
        api_url=prefect_server.api_url,
        rng=random.Random(SEED),
        kills=BATCHES >= KILL_MIN_BATCHES,
    )
    start = time.monotonic()
    _baseline(soak)
    for step in range(1, BATCHES + 1):
        kind = soak.pick(BATCH_KINDS)
        said = getattr(soak, "batch_" + kind.replace("-", "_"))()
        soak.counts[kind] += 1
        if soak.rng.random() < OP_SHARE or step == BATCHES:  # a short run still ends with one
            op = soak.pick(OPS)
            said += " | " + getattr(soak, "op_" + op.replace("-", "_"))()
            soak.counts[op] += 1
        print(
            f"soak {step}/{BATCHES} [{time.monotonic() - start:6.0f}s] {kind}: {said} | "
            f"rows {len(soak.keys)} champion v{inv.champion(soak.model).version}",
            flush=True,
        )
        if step % CHECK_EVERY == 0:
            soak.check()
    soak.check()
    print(
        f"soak: seed {SEED}, {BATCHES} batches in {time.monotonic() - start:.0f} s, invariants hold; "
        f"{dict(sorted(soak.counts.items()))}; {len(soak.keys)} rows, {soak.retrains} versions, "
        f"{soak.rejected} batches refused, {soak.rollbacks} rollbacks",
        flush=True,
    )
