"""Build the code checkout's DVC-tracked `data/` from the raw files in seeds/ (no network needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from adapters.dvc_registry import dvc_output_to_stderr
from evergreen.datasets import prepare_elec2
from evergreen.settings import get_settings

SEEDS = Path("seeds")


def _md5(dvc_file: Path) -> str | None:
    if not dvc_file.is_file():
        return None
    return str(yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"])


def build_seed(out: Path = Path("data")) -> dict[str, Any]:
    """Write data/elec2/elec2.csv deterministically, `dvc add data`, push to the local remote.

    The CSV bytes are a pure function of seeds/elec2/electricity.csv, so a fresh clone rebuilds
    exactly the version that the committed data.dvc names.
    """
    from dvc.repo import Repo

    root = out.resolve().parent
    frame = prepare_elec2(SEEDS / "elec2" / "electricity.csv")
    target = out / "elec2" / "elec2.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(target, index=False, date_format="%Y-%m-%d %H:%M:%S", lineterminator="\n")
    before = _md5(root / "data.dvc")
    remote = Path(get_settings().remote_url) / "seed"
    remote.mkdir(parents=True, exist_ok=True)
    with dvc_output_to_stderr(), Repo(str(root)) as repo:
        with repo.config.edit("local") as conf:  # .dvc/config.local: per-machine, not committed
            conf["remote"]["seed"] = {"url": str(remote)}
            conf["core"]["remote"] = "seed"
        repo.add(str(out.resolve()))
        repo.push()
    after = _md5(root / "data.dvc")
    return {
        "path": str(target),
        "rows": len(frame),
        "md5": after,
        "matches_data_dvc": before == after,
        "remote": str(remote),
    }
