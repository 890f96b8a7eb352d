"""The server fixtures (tests/support/servers.py) start real servers that answer, and clients can use them."""

from __future__ import annotations

import asyncio
import uuid

import pytest

import stack

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_mlflow_server_answers_and_creates_experiment(mlflow_server, stack_env):
    assert stack.http_get(f"{mlflow_server.url}/health")[0] == 200
    stack_env(mlflow=mlflow_server)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server.url)
    name = f"fixture-{uuid.uuid4().hex[:6]}"
    exp_id = client.create_experiment(name)
    assert client.get_experiment(exp_id).name == name

    import mlflow

    assert mlflow.get_tracking_uri() == mlflow_server.url
    with mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.log_metric("m", 1.0)
        mlflow.log_text("hello", "a.txt")  # proxied artifact upload
    assert client.get_run(run.info.run_id).data.metrics["m"] == 1.0
    assert (mlflow_server.artifacts).exists()


def test_prefect_backend_server_answers(prefect_backend_server, stack_env):
    assert stack.http_get(f"{prefect_backend_server.api_url}/health")[0] == 200
    stack_env(prefect=prefect_backend_server)
    from prefect.client.orchestration import get_client

    async def read():
        async with get_client() as client:
            assert str(client.api_url).rstrip("/") == prefect_backend_server.api_url
            healthy = await client.api_healthcheck()
            assert healthy is None, healthy
            return await client.read_work_pools()

    assert isinstance(asyncio.run(read()), list)


def test_prefect_worker_comes_online(prefect_server, prefect_worker, tmp_path):
    svc = prefect_worker(cwd=tmp_path)
    pool = svc.extra["pool"]
    assert svc.alive()
    assert stack.worker_online(prefect_server.api_url, pool, svc.extra["worker_name"])
    assert stack.create_work_pool(prefect_server.api_url, pool) is False  # idempotent
    svc.stop()
    assert not svc.alive()
