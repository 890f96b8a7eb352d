"""Build the code checkout's DVC-tracked `data/` from the raw files in seeds/ (no network needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from adapters.dvc_registry import dvc_output_to_stderr
from evergreen.datasets import SEEDS as SHIPPED
from evergreen.datasets import seed_frame
from evergreen.settings import get_settings

SEEDS = Path("seeds")


def _md5(dvc_file: Path) -> str | None:
    if not dvc_file.is_file():
        return None
    return str(yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"])


def build_seed(out: Path = Path("data")) -> dict[str, Any]:
    """Write data/<model>/<model>.csv for every shipped model (elec2, bike_sharing) deterministically,
    `dvc add data`, push to the local remote.

    The CSV bytes are a pure function of the raw files in seeds/, so a fresh clone rebuilds exactly
    the version that the committed data.dvc names. `path` and `rows` are Elec2's (kept for scripts);
    `datasets` lists every seeded model's file and rows.
    """
    from dvc.repo import Repo

    root = out.resolve().parent
    datasets = {}
    for model in SHIPPED:
        frame = seed_frame(model, SEEDS)
        target = out / model / f"{model}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(target, index=False, date_format="%Y-%m-%d %H:%M:%S", lineterminator="\n")
        datasets[model] = {"path": str(target), "rows": len(frame)}
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
        **datasets["elec2"],
        "datasets": datasets,
        "md5": after,
        "matches_data_dvc": before == after,
        "remote": str(remote),
    }
