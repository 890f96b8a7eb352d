"""A fresh clone rebuilds the committed data.dvc version from seeds/ with no network."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]


def test_seed_reproduces_committed_data_dvc(tmp_path):
    committed = yaml.safe_load((ROOT / "data.dvc").read_text())["outs"][0]["md5"]
    env = {
        "EVERGREEN_HOME": str(tmp_path / "home"),
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
    }
    out = subprocess.run(
        [str(Path(sys.executable).with_name("evergreen")), "seed", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["rows"] == 45312
    assert {m: d["rows"] for m, d in result["datasets"].items()} == {"elec2": 45312, "bike_sharing": 17379}
    assert result["md5"] == committed and result["matches_data_dvc"]
    # pushed: the directory manifest is in the local remote
    digest = committed.removesuffix(".dir")
    assert (Path(result["remote"]) / "files" / "md5" / digest[:2] / f"{digest[2:]}.dir").is_file()
    head = (ROOT / "data" / "elec2" / "elec2.csv").open().readline().strip()
    assert head.startswith("timestamp,day,period") and "date" not in head.split(",")
    bike = (ROOT / "data" / "bike_sharing" / "bike_sharing.csv").open().readline().strip().split(",")
    assert bike[0] == "timestamp" and "cnt" in bike and not {"casual", "registered", "instant"} & set(bike)
