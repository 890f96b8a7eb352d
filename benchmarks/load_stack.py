"""The load test's stack and models (benchmarks/load.py): PostgreSQL databases, Prefect and MLflow
servers, the work pool, limits and worker; N renamed copies of models/elec2.yaml, one trained seed
champion cloned under every name, and `prefect deploy` of their rendered deployments and automations.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get(
    "EVERGREEN_LOAD_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
POOL = "load-pool"
SEED_WEEKS = 10


def log(msg: str) -> None:
    sys.stderr.write(f"[load {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


# ------------------------------------------------------------------------------------------ stack


class LoadStack(contextlib.ExitStack):
    """PostgreSQL databases, Prefect and MLflow servers, env; everything undone on exit."""

    def __init__(self, tmp: Path) -> None:
        super().__init__()
        self.tmp = tmp
        tag = f"evergreen_load_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.dbs = {"prefect": f"{tag}_prefect", "mlflow": f"{tag}_mlflow"}
        self.env: dict[str, str] = {}

    def start(self, models_dir: Path) -> None:
        import stack

        base = PG_ADMIN.rsplit("/", 1)[0]
        stack.create_postgres_database(self.dbs["prefect"], admin_dsn=PG_ADMIN)
        self.callback(self._drop, "prefect")
        stack.create_postgres_database(self.dbs["mlflow"], admin_dsn=PG_ADMIN, extensions=())
        self.callback(self._drop, "mlflow")
        pport, mport = stack.free_port(), stack.free_port()
        logs = self.tmp / "logs"
        logs.mkdir()
        t = time.monotonic()
        mlflow = stack.start_mlflow_server(
            mport,
            backend_store_uri=f"{base}/{self.dbs['mlflow']}",
            artifacts_destination=self.tmp / "mlartifacts",
            log_path=logs / "mlflow.log",
            port_setting=None,
            wait=False,
            die_with_parent=True,
        )
        self.callback(mlflow.stop)
        prefect = stack.start_prefect_server(
            pport,
            self.tmp / "prefect-server",
            database_url=stack.asyncpg_url(f"{base}/{self.dbs['prefect']}"),
            log_path=logs / "prefect.log",
            port_setting=None,
            die_with_parent=True,
        )
        self.callback(prefect.stop)
        mlflow.wait_healthy(240)
        log(f"servers up in {time.monotonic() - t:.1f}s (Prefect :{pport}, MLflow :{mport}, PostgreSQL)")
        self.api_url = f"http://127.0.0.1:{pport}/api"
        self.env = {
            "PREFECT_API_URL": self.api_url,
            "PREFECT_HOME": str(self.tmp / "prefect-client"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mport}",
            "EVERGREEN_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mport}",
            "EVERGREEN_HOME": str(self.tmp / "home"),
            "EVERGREEN_MODELS_DIR": str(models_dir),
            "PREFECT_LOGGING_LEVEL": "WARNING",
        }
        os.environ.update(self.env)

    def _drop(self, which: str) -> None:
        import stack

        with contextlib.suppress(Exception):
            stack.drop_postgres_database(self.dbs[which], admin_dsn=PG_ADMIN)

    def pool(self, concurrency: int, worker_type: str) -> None:
        """The work pool with its queues and a concurrency limit, and the retrain locks (before deploy)."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.actions import WorkPoolUpdate

        import stack
        from deployments import work_queues
        from stack.queues import ensure_work_queues

        stack.create_work_pool(self.api_url, POOL, env=self.env, worker_type=worker_type)
        with get_client(sync_client=True) as c:
            c.update_work_pool(POOL, WorkPoolUpdate(concurrency_limit=concurrency))
        ensure_work_queues(self.api_url, POOL, work_queues())
        stack.limits.ensure_limits(
            self.api_url, stack.limits.desired_limits(Path(self.env["EVERGREEN_MODELS_DIR"]))
        )

    def worker(self, worker_type: str) -> None:
        """One worker of `worker_type` polling the pool, started as `evergreen up` starts it."""
        import stack

        svc = stack.start_prefect_worker(
            self.api_url,
            POOL,
            log_path=self.tmp / "logs" / "worker.log",
            cwd=ROOT,
            env={**os.environ, **self.env},
            query_seconds=2.0,  # StackConfig's default, as `evergreen up` starts it
            create_pool=False,
            die_with_parent=True,
            worker_type=worker_type,
        )
        self.callback(svc.stop)


# ------------------------------------------------------------------------------------------- models


def spec_dict(name: str) -> dict[str, Any]:
    """models/elec2.yaml renamed, as the e2e tests run it: no cron, no refit, a 6 h cooldown."""
    import yaml

    raw = yaml.safe_load((ROOT / "models" / "elec2.yaml").read_text())
    raw.update(name=name, schedule=None)
    raw["training"]["refit"] = False
    raw["triggers"]["cooldown"] = "6h"
    raw.setdefault("monitor", {})["schedule"] = None
    return raw


def write_specs(models_dir: Path, names: list[str]) -> list[Any]:
    import yaml

    from evergreen.spec import parse_spec

    models_dir.mkdir(parents=True, exist_ok=True)
    specs = []
    for name in names:
        raw = spec_dict(name)
        (models_dir / f"{name}.yaml").write_text(yaml.safe_dump(raw))
        specs.append(parse_spec(raw))
    return specs


def seed_champion(tmp: Path, seed: str) -> str:
    """Ingest Elec2 weeks 0..9 and train the seed champion, in-process; returns its version."""
    import pandas as pd

    from evergreen.datasets import prepare_elec2, weekly_batches
    from flows.ingest import ingest
    from flows.retrain import retrain

    weeks = weekly_batches(prepare_elec2(ROOT / "seeds" / "elec2" / "electricity.csv"), "timestamp")
    batch = tmp / "weeks-0-9.parquet"
    pd.concat(weeks[:SEED_WEEKS]).to_parquet(batch, index=False)
    ingest(model=seed, path=str(batch))
    out = retrain(model=seed, reason="manual")
    if out["status"] != "promoted":
        raise RuntimeError(f"seed retrain did not promote: {out}")
    return str(out["version"])


def clone_champion(seed: str, version: str, model: str, promoted_ago: timedelta) -> None:
    """Register the seed's trained model under `model` with its lineage tags and make it champion."""
    import mlflow

    from adapters import mlflow_registry as registry
    from evergreen.settings import get_settings

    settings = get_settings()
    cl = registry.client(settings)
    src = cl.get_model_version(seed, version)
    skip = {"champion_since", "promoted_at", "promotion_reason", "replaced_version"}
    cl.create_registered_model(model, description="load-test copy of the seed champion")
    mv = mlflow.register_model(src.source, model, tags={k: v for k, v in src.tags.items() if k not in skip})
    registry.set_alias(settings, model, registry.CHAMPION, str(mv.version), reason="manual", previous=None)
    when = (datetime.now(UTC) - promoted_ago).isoformat()
    cl.set_model_version_tag(model, str(mv.version), "promoted_at", when)


def deploy(specs: list[Any], tmp: Path, env: dict[str, str]) -> float:
    """`prefect --no-prompt deploy --all` of the rendered deployments and automations; seconds taken."""
    from deployments import render_prefect_yaml

    path = tmp / "prefect.yaml"
    path.write_text(render_prefect_yaml(specs, work_pool=POOL))
    from stack.deploy import deploy_prefect_file

    return round(deploy_prefect_file(path, env, cwd=ROOT), 1)
