"""Registry reads: the champion for prequential scoring, and every version with its lineage and gate report."""

from __future__ import annotations

from typing import Any


class Champion:
    """The current champion, loaded once per version, for prequential scoring."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.version: str | None = None
        self._pipe: Any = None

    def refresh(self) -> str | None:
        from adapters import mlflow_registry
        from evergreen.settings import get_settings

        champ = mlflow_registry.get_champion(mlflow_registry.client(get_settings()), self.model)
        if champ is None:
            self.version, self._pipe = None, None
        elif champ.version != self.version:
            self._pipe = mlflow_registry.load_sklearn(f"models:/{self.model}@champion")
            self.version = champ.version
        return self.version

    def accuracy(self, frame: Any, spec: Any) -> float | None:
        """Accuracy for a classifier; None for a regression model (see `score`)."""
        return self.score(frame, spec).get("accuracy")

    def score(self, frame: Any, spec: Any) -> dict[str, Any]:
        """The week's prequential score: {"accuracy": x} for a classifier, else {"metric", "metric_name"}."""
        from evergreen import training
        from evergreen.metrics import metric_value

        regression = getattr(spec, "task", "binary") == "regression"
        if self._pipe is None or frame.empty:
            return {"metric": None, "metric_name": spec.metric} if regression else {"accuracy": None}
        scores = training.predict_scores(self._pipe, frame, spec.feature_names)
        name = spec.metric if regression else "accuracy"
        value = round(float(metric_value(name, training.labels(frame, spec), scores)), 4)
        return {"metric": value, "metric_name": name} if regression else {"accuracy": value}


def collect_versions(model: str) -> list[dict[str, Any]]:
    """Every registered version with its lineage tags and gate report (oldest first)."""
    from adapters import mlflow_registry
    from evergreen.settings import get_settings

    settings = get_settings()
    cl = mlflow_registry.client(settings)
    out = []
    for mv in sorted(cl.search_model_versions(f"name='{model}'"), key=lambda m: int(m.version)):
        tags = dict(mv.tags)
        try:
            gate_md = mlflow_registry.load_artifact_text(settings, mv.run_id, "gate_report.md")
        except Exception:  # noqa: BLE001 (a report without a gate report still shows the tag)
            gate_md = ""
        passed = tags.get("gate_passed") == "true"
        out.append(
            {
                "version": str(mv.version),
                "reason": tags.get("reason", ""),
                "status": version_status(tags, list(mv.aliases or []), passed),
                "run_id": mv.run_id,
                "tags": tags,
                "gate_report": gate_md,
            }
        )
    return out


def version_status(tags: dict[str, str], aliases: list[str], passed: bool) -> str:
    """promoted (it was champion), shadow (pending), retired (a shadow that lost), passed, or rejected."""
    if tags.get("promoted_at"):
        return "promoted"
    if "shadow" in aliases:
        return "shadow"
    if tags.get("retired") == "true":
        return "retired"
    return "passed" if passed else "rejected"
