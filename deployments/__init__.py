"""Deployment definitions: each model's retrain, monitor and ingest deployments, rendered from
models/<name>.yaml into prefect.yaml (`evergreen deployments render [--check]`). No Prefect import.

The local stack that deploys them lives in `stack`, the guided demo in `demo`.
"""

from deployments.render import (
    WORK_POOL,
    deployment_names,
    load_specs,
    render_models_dir,
    render_prefect_yaml,
    retrain_deployments,
    retrain_priorities,
    retrain_queue,
    work_queues,
)

__all__ = [
    "WORK_POOL",
    "deployment_names",
    "load_specs",
    "render_models_dir",
    "render_prefect_yaml",
    "retrain_deployments",
    "retrain_priorities",
    "retrain_queue",
    "work_queues",
]
