"""The demo's own stack home and environment: a wiped ``<EVERGREEN_HOME>/demo/``, a spec copy with a short
cooldown, free ports, and os.environ for the worker it starts (restored afterwards)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

import stack
from demo.options import DemoPaths, Log, noop
from stack import local


def demo_models_dir(
    project_root: Path,
    demo_home: Path,
    cooldown: str,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    volume_share: float | None = None,
) -> Path:
    """A copy of models/*.yaml under the demo home with `triggers.cooldown` replaced, and per model the
    top-level keys in `overrides` (notifications, promotion: demo/release.py `spec_overrides`).

    `volume_share` replaces an enabled volume trigger's `min_new_share`: the warm-up (an empty
    registry, all rows new) still meets it, replay weeks do not, so a week does not start a volume
    retrain beside its drift retrain on the same rows."""
    from evergreen.settings import get_settings

    src = get_settings().models_dir
    src = src if src.is_absolute() else project_root / src
    dst = demo_home / "models"
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.glob("*.yaml")):
        doc = yaml.safe_load(f.read_text()) or {}
        triggers = doc.setdefault("triggers", {})
        triggers["cooldown"] = cooldown
        extra = dict((overrides or {}).get(f.stem) or {})
        doc.update(extra)
        changed = "".join(f", {k} = {json.dumps(v)}" for k, v in extra.items())
        volume = triggers.get("volume")
        if volume_share is not None and isinstance(volume, dict) and volume.get("enabled", True):
            volume["min_new_share"] = volume_share
            changed += f", triggers.volume.min_new_share = {volume_share:g}"
        header = f"# demo copy of {f} (evergreen demo): triggers.cooldown = {cooldown}{changed}\n"
        (dst / f.name).write_text(header + yaml.safe_dump(doc, sort_keys=False))
    return dst


def stop_previous(demo_home: Path, log: Log = noop) -> None:
    """Stop a stack a previous `evergreen demo --keep` left in `demo_home` (by recorded PIDs)."""
    if local.load_state(demo_home).get("services"):
        log(f"stopping the previous demo stack recorded in {demo_home}")
        cfg = local.StackConfig(home=demo_home)
        local.down(cfg, progress=log)


def reset_demo_home(demo_home: Path, log: Log = noop) -> None:
    stop_previous(demo_home, log)
    if demo_home.exists():
        shutil.rmtree(demo_home)
    demo_home.mkdir(parents=True)


def _pick_port(port: int, setting: str, log: Log) -> int:
    if not stack.port_in_use(port):
        return port
    new = stack.free_port()
    log(f"port {port} ({setting}) is taken, probably by `evergreen up`; the demo stack uses {new}")
    return new


DEMO_ENV_KEYS = (
    "EVERGREEN_HOME",
    "EVERGREEN_MODELS_DIR",
    "EVERGREEN_DATA_REPO",
    "EVERGREEN_DVC_REMOTE",
    "EVERGREEN_PREFECT_PORT",
    "EVERGREEN_MLFLOW_PORT",
    "EVERGREEN_MLFLOW_ARTIFACTS_DESTINATION",
    "EVERGREEN_MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_URI",
    "PREFECT_API_URL",
    "PREFECT_HOME",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR",
)


@contextlib.contextmanager
def demo_environment(paths: DemoPaths, models_dir: Path, log: Log) -> Iterator[None]:
    """os.environ for the demo stack (inherited by the worker and its flow runs); restored afterwards."""
    from evergreen.settings import get_settings

    s = get_settings()
    saved = {k: os.environ.get(k) for k in DEMO_ENV_KEYS}
    try:
        for k in (
            "EVERGREEN_DATA_REPO",
            "EVERGREEN_DVC_REMOTE",
            "EVERGREEN_MLFLOW_ARTIFACTS_DESTINATION",
            "EVERGREEN_MLFLOW_TRACKING_URI",
            "MLFLOW_TRACKING_URI",
            "PREFECT_API_URL",
        ):
            os.environ.pop(k, None)
        os.environ["EVERGREEN_HOME"] = str(paths.demo_home)
        os.environ["EVERGREEN_MODELS_DIR"] = str(models_dir)
        os.environ["EVERGREEN_PREFECT_PORT"] = str(_pick_port(s.prefect_port, "EVERGREEN_PREFECT_PORT", log))
        os.environ["EVERGREEN_MLFLOW_PORT"] = str(_pick_port(s.mlflow_port, "EVERGREEN_MLFLOW_PORT", log))
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
