"""MLflow tracking and Model Registry I/O: log a run, register a version with lineage, move aliases.

Every trained model becomes a registered version; only the `champion` alias decides what serves.
MLflow keeps no alias history, so each alias move is also written as version tags (and an event).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from adapters import evergreen_pyfunc
from evergreen.faults import fault_point
from evergreen.lineage import as_tag as as_tag  # re-exported: tag formatting lives in the core
from evergreen.settings import Settings

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class Champion:
    version: str
    run_id: str
    tags: dict[str, str]

    @property
    def model_uri(self) -> str:
        return f"runs:/{self.run_id}/model"


def client(settings: Settings) -> Any:
    """An MlflowClient bound to the configured tracking URI (set per call, never at import)."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(settings.tracking_uri)
    return MlflowClient(tracking_uri=settings.tracking_uri)


def get_champion(cl: Any, name: str) -> Champion | None:
    """The version behind the `champion` alias, or None when there is none yet."""
    return get_aliased(cl, name, CHAMPION)


def alias_version(cl: Any, name: str, alias: str) -> str | None:
    """The version number behind `alias`, or None when the alias (or the model) does not exist."""
    found = get_aliased(cl, name, alias)
    return None if found is None else found.version


def get_aliased(cl: Any, name: str, alias: str) -> Champion | None:
    """The version behind any alias (champion, challenger, shadow...), or None when there is none."""
    from mlflow.exceptions import MlflowException

    try:
        mv = cl.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        # MLflow's basic-auth app answers 403, not 404, for a version read of a model that does not
        # exist yet (docs/security.md): that is "no champion" too; a real refusal is re-raised.
        if exc.error_code == "PERMISSION_DENIED" and not _model_exists(cl, name):
            return None
        raise
    return Champion(version=str(mv.version), run_id=mv.run_id, tags=dict(mv.tags))


def _model_exists(cl: Any, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        cl.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise
    return True


def load_sklearn(uri: str) -> Any:
    import mlflow.sklearn

    return mlflow.sklearn.load_model(uri)


def last_promotion(cl: Any, name: str) -> datetime | None:
    """When the current champion was promoted (its `promoted_at` tag), for the cooldown check."""
    champ = get_champion(cl, name)
    if champ is None or "promoted_at" not in champ.tags:
        return None
    return datetime.fromisoformat(champ.tags["promoted_at"])


def _flatten(prefix: str, d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(f"{key}.", v))
        else:
            out[key] = v
    return out


@dataclass(frozen=True)
class LoggedRun:
    run_id: str
    model_uri: str
    experiment_id: str


def log_run(
    settings: Settings,
    *,
    model_name: str,
    pipeline: Any,
    example: pd.DataFrame,
    params: dict[str, Any],
    metrics: dict[str, float | None],
    artifacts: dict[str, str | bytes],
    run_name: str,
    tags: dict[str, str],
) -> LoggedRun:
    """One MLflow run: params, metrics, the sklearn pipeline (signature + input example) and artifacts (text or bytes).

    The model's pyfunc predicts the natural output (adapters/evergreen_pyfunc.py): a DataFrame of
    probabilities with one column per class label, or a value per row for regression.
    """
    import mlflow
    from mlflow.models import Model, infer_signature

    client(settings)
    exp = mlflow.set_experiment(f"evergreen-{model_name}")
    with mlflow.start_run(experiment_id=exp.experiment_id, run_name=run_name, tags=tags) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in _flatten("", params).items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None and v == v})
        task, labels = _task_of(pipeline)
        natural = evergreen_pyfunc.NaturalOutput(pipeline, task, labels).predict(example)
        info = Model.log(
            artifact_path=None,
            name="model",
            flavor=_NaturalOutputFlavor,
            flavor_name="sklearn",
            sk_model=pipeline,
            task=task,
            labels=labels,
            signature=infer_signature(example, natural),
            input_example=example.head(5),
            serialization_format="skops",
            skops_trusted_types=_trusted_types(pipeline),
            pip_requirements=_requirements(pipeline),
        )
        with tempfile.TemporaryDirectory() as tmp:
            for fname, text in artifacts.items():
                path = Path(tmp) / fname
                path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
                mlflow.log_artifact(str(path))
        return LoggedRun(run_id=run.info.run_id, model_uri=info.model_uri, experiment_id=exp.experiment_id)


def _task_of(pipeline: Any) -> tuple[str, list[str]]:
    """(task type, class labels) that evergreen.training.fit recorded on the pipeline."""
    task = str(getattr(pipeline, "evergreen_task", "binary"))
    if task == "regression":
        return task, []
    default = [str(c) for c in getattr(pipeline, "classes_", [0, 1])]
    return task, list(getattr(pipeline, "evergreen_labels", default))


class _NaturalOutputFlavor:
    """mlflow.sklearn's save_model, with the python_function flavour loaded by adapters/evergreen_pyfunc.py.

    Passed to `mlflow.models.Model.log` as the flavour module: the saved model keeps the `sklearn`
    flavour (Evergreen loads the Pipeline through it) and its pyfunc gives the natural output.
    """

    __name__ = "sklearn"

    @staticmethod
    def save_model(
        path: str, mlflow_model: Any, *, sk_model: Any, task: str, labels: list[str], **kwargs: Any
    ) -> None:
        import os

        import mlflow.sklearn

        loader = evergreen_pyfunc.__file__
        mlflow.sklearn.save_model(
            sk_model,
            path,
            mlflow_model=mlflow_model,
            code_paths=[loader],
            pyfunc_predict_fn="predict",
            **kwargs,
        )
        conf = mlflow_model.flavors["python_function"]
        conf["loader_module"] = Path(loader).stem
        conf[evergreen_pyfunc.TASK_KEY] = task
        conf[evergreen_pyfunc.LABELS_KEY] = labels
        mlflow_model.save(os.path.join(path, "MLmodel"))


def _requirements(pipeline: Any) -> list[str]:
    """Pinned serving requirements from the running environment.

    Given explicitly, MLflow skips inferring them by re-loading the model in a subprocess, which took
    10-15 s of every retrain here (measured: log_model 12 s -> 0.1 s).
    """
    from importlib.metadata import version

    pkgs = ["mlflow", "scikit-learn", "pandas", "numpy", "scipy", "skops"]
    if type(pipeline[-1]).__module__.startswith("lightgbm"):
        pkgs.append("lightgbm")
    if type(pipeline[-1]).__module__ == "evergreen.online":  # issue 12: a river model inside
        pkgs.append("river")
    return [f"{p}=={version(p)}" for p in pkgs]


def _trusted_types(pipeline: Any) -> list[str]:
    """MLflow serialises sklearn models with skops; trust exactly the types of the pipeline we just fitted."""
    import skops.io

    return list(skops.io.get_untrusted_types(data=skops.io.dumps(pipeline)))


def register_version(
    settings: Settings, name: str, logged: LoggedRun, tags: dict[str, str], description: str
) -> str:
    """Create a new model version (always, passed or not) and return its number."""
    cl = client(settings)
    from mlflow.exceptions import MlflowException

    try:
        cl.get_registered_model(name)
    except MlflowException:
        cl.create_registered_model(name, description=f"Managed by Evergreen (models/{name}.yaml).")
    import mlflow

    # register_model resolves MLflow 3's `models:/m-...` logged-model URIs (and links the model id).
    mv = mlflow.register_model(logged.model_uri, name, tags=tags)
    cl.update_model_version(name, mv.version, description=description)
    return str(mv.version)


def delete_version(settings: Settings, name: str, version: str) -> None:
    """Undo a registration whose later steps failed, so a failed run leaves the registry as it was."""
    cl = client(settings)
    cl.delete_model_version(name, version)


def undo_registration(settings: Settings, name: str, version: str, previous: str | None) -> None:
    """Delete a version whose alias move failed and point `champion` back at `previous` (if any)."""
    delete_version(settings, name, version)
    if previous:
        client(settings).set_registered_model_alias(name, CHAMPION, previous)


def has_version(settings: Settings, name: str, version: str) -> bool:
    """Whether `name` has a registered version `version`."""
    from mlflow.exceptions import MlflowException

    try:
        client(settings).get_model_version(name, version)
    except MlflowException:
        return False
    return True


def set_alias(
    settings: Settings, name: str, alias: str, version: str, *, reason: str, previous: str | None
) -> str:
    """Move an alias and record the move on the version (MLflow keeps no alias history)."""
    cl = client(settings)
    now = datetime.now(UTC).isoformat()
    cl.set_registered_model_alias(name, alias, version)
    if alias == CHAMPION:
        fault_point("retrain:after-alias")
    cl.set_model_version_tag(name, version, f"{alias}_since", now)
    if alias == CHAMPION:
        cl.set_model_version_tag(name, version, "promoted_at", now)
        cl.set_model_version_tag(name, version, "promotion_reason", reason)
        cl.set_model_version_tag(name, version, "replaced_version", previous or "")
        if previous and previous != version:
            cl.set_model_version_tag(name, previous, "champion_until", now)
    return now


def tag_version(settings: Settings, name: str, version: str, tags: dict[str, str]) -> None:
    cl = client(settings)
    for k, v in tags.items():
        cl.set_model_version_tag(name, version, k, v)


def load_artifact_text(settings: Settings, run_id: str, path: str) -> str:
    import mlflow

    client(settings)
    return mlflow.artifacts.load_text(f"runs:/{run_id}/{path}")


def load_artifact_bytes(settings: Settings, run_id: str, path: str) -> bytes:
    """A binary artifact of a run (e.g. reference_sample.parquet), via a temporary download."""
    import mlflow

    client(settings)
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/{path}", dst_path=tmp)
        return Path(local).read_bytes()
