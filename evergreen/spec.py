"""ModelSpec: the one YAML file per model that drives ingest, validation, training, gate and triggers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from evergreen.spec_base import SpecError, _check_duration, _Strict, read_yaml
from evergreen.spec_data import DataChecks, DataSpec, DelayedLabels, Feature
from evergreen.spec_engine import TrainingEngine
from evergreen.spec_release import Notifications, Promotion
from evergreen.spec_triggers import (
    DriftTrigger,
    EstimatedPerformanceTrigger,
    Monitor,
    MultivariateDrift,
    PerformanceTrigger,
    RetrainSchedule,
    Schedule,
    Triggers,
    VolumeTrigger,
    check_estimated,
)
from evergreen.spec_update import Update

__all__ = [
    "HIGHER_IS_BETTER",
    "METRIC_RANGE",
    "TASK_METRICS",
    "DataChecks",
    "DataSpec",
    "DelayedLabels",
    "DriftTrigger",
    "EstimatedPerformanceTrigger",
    "Feature",
    "Monitor",
    "MultivariateDrift",
    "Notifications",
    "PerformanceTrigger",
    "Promotion",
    "RetrainSchedule",
    "Schedule",
    "SpecError",
    "Triggers",
    "Update",
    "VolumeTrigger",
    "_check_duration",
]

TaskType = Literal["binary", "multiclass", "regression"]
MetricName = Literal["roc_auc", "accuracy", "logloss", "macro_f1", "rmse", "mae", "r2"]
HIGHER_IS_BETTER: dict[str, bool] = {
    "roc_auc": True,
    "accuracy": True,
    "logloss": False,
    "macro_f1": True,
    "rmse": False,
    "mae": False,
    "r2": True,
}
# The metrics each task type can be judged on; the first is the default `metric`.
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("roc_auc", "accuracy", "logloss"),
    "multiclass": ("accuracy", "macro_f1", "logloss"),
    "regression": ("rmse", "mae", "r2"),
}
# Where a floor can lie: probabilities and scores in [0, 1]; errors >= 0; R² <= 1.
METRIC_RANGE: dict[str, tuple[float | None, float | None]] = {
    "roc_auc": (0.0, 1.0),
    "accuracy": (0.0, 1.0),
    "macro_f1": (0.0, 1.0),
    "logloss": (0.0, None),
    "rmse": (0.0, None),
    "mae": (0.0, None),
    "r2": (None, 1.0),
}


class Window(_Strict):
    """Which rows before the hold-out the model trains on."""

    kind: Literal["all", "rolling", "decay"] = "all"
    rows: int | None = Field(default=None, gt=0, description="rolling: the last N rows.")
    period: str | None = Field(default=None, description="rolling: the last period, e.g. '8W'.")
    half_life: str | None = Field(default=None, description="decay: sample weight halves every half_life.")

    _dur = field_validator("period", "half_life")(classmethod(lambda cls, v: _check_duration(v)))

    @model_validator(mode="after")
    def _consistent(self) -> Window:
        if self.kind == "rolling" and (self.rows is None) == (self.period is None):
            raise ValueError("a rolling window needs exactly one of `rows` or `period`")
        if self.kind == "decay" and self.half_life is None:
            raise ValueError("a decay window needs `half_life`")
        if self.kind == "all" and (self.rows or self.period or self.half_life):
            raise ValueError("window kind 'all' takes no rows, period or half_life")
        return self


class Holdout(_Strict):
    """The most recent labelled window, scored by challenger and champion alike."""

    period: str | None = Field(default=None, description="Default '7D' when `rows` is not given.")
    rows: int | None = Field(default=None, gt=0)

    _dur = field_validator("period")(classmethod(lambda cls, v: _check_duration(v)))

    @model_validator(mode="before")
    @classmethod
    def _default_period(cls, data: Any) -> Any:
        # The default applies only when neither form is given, so `{rows: 365}` alone is valid.
        if isinstance(data, dict) and data.get("rows") is None and "period" not in data:
            return {**data, "period": "7D"}
        return data

    @model_validator(mode="after")
    def _one(self) -> Holdout:
        if self.rows is not None and self.period is not None:
            raise ValueError("give `period` or `rows`, not both")
        if self.rows is None and self.period is None:
            raise ValueError("give `period` or `rows`")
        return self


class Estimator(_Strict):
    """LightGBM by default; any scikit-learn classifier (regressor for task regression) by import path."""

    kind: Literal["lightgbm", "sklearn", "river"] = "lightgbm"
    class_path: str | None = Field(
        default=None,
        description="sklearn: e.g. sklearn.linear_model.LogisticRegression; river: e.g. river.forest.ARFClassifier",
    )
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _path(self) -> Estimator:
        if self.kind in ("sklearn", "river") and not self.class_path:
            raise ValueError(f"a {self.kind} estimator needs `class_path`")
        return self  # built and checked against the task by ModelSpec (it knows the task)


class Training(_Strict):
    window: Window = Window()
    holdout: Holdout = Holdout()
    estimator: Estimator = Estimator()
    seed: int = 42
    min_train_rows: int = Field(default=500, gt=0)
    refit: bool = Field(
        default=False,
        description="After a passed gate, refit on the window including the hold-out and register that model.",
    )
    update: Update | None = Field(default=None, description="Warm-start updates between full refits.")
    online: bool | None = Field(
        default=None,
        description="Continue the champion on the labelled rows since its train_end (partial_fit); "
        "default: true for estimator kind river. Needs kind river.",
    )
    engine: TrainingEngine = Field(
        default_factory=TrainingEngine, description="Where the fit runs: local, dask (lightgbm.dask), auto."
    )

    @property
    def is_online(self) -> bool:
        """Whether a retrain continues the champion (river models do unless `online: false`)."""
        return self.estimator.kind == "river" and self.online is not False

    @model_validator(mode="after")
    def _update_needs_lightgbm(self) -> Training:
        # init_model continues a LightGBM booster; sklearn estimators have no such warm start.
        if self.update is not None and self.estimator.kind != "lightgbm":
            raise ValueError("training.update needs training.estimator.kind lightgbm (warm-start updates)")
        if self.online and self.estimator.kind != "river":
            raise ValueError("training.online needs training.estimator.kind river (partial_fit)")
        if self.engine.kind != "local" and self.estimator.kind != "lightgbm":
            raise ValueError(
                "training.engine dask/auto needs training.estimator.kind lightgbm (lightgbm.dask)"
            )
        return self


class Gate(_Strict):
    """Champion/challenger decision: floor, paired-bootstrap CI on the difference, latency budget."""

    floor: float | None = Field(default=None, description="The metric must clear this (<= for logloss).")
    tolerance: float = Field(default=0.0, ge=0.0, description="Margin for the CI lower bound.")
    require_superiority: bool = Field(
        default=False, description="true: CI lower bound > tolerance; false: CI lower bound >= -tolerance."
    )
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    n_bootstrap: int = Field(default=1000, ge=100)
    seed: int = 0
    latency_p95_ms: float | None = Field(
        default=250.0, gt=0, description="p95 batch-predict budget; null: off."
    )
    latency_batch_rows: int = Field(default=1000, gt=0)
    enabled: bool = Field(default=True, description="false: promote every trained model (backtests only).")
    min_holdout_rows: int = Field(
        default=100,
        ge=1,
        description="Fewer hold-out rows that neither model trained on: 'insufficient evidence', no promotion.",
    )
    slices: list[str] = Field(
        default_factory=list, description="Features whose slices may not regress by more than the tolerance."
    )
    slice_min_rows: int = Field(default=100, ge=1, description="Smaller slices are reported, not judged.")


class ModelSpec(_Strict):
    """Everything Evergreen needs to know about one model."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    data: DataSpec
    features: list[Feature] = Field(min_length=1)
    task: TaskType = Field(default="binary", description="binary | multiclass | regression.")
    metric: MetricName = Field(
        default="roc_auc", description="binary: roc_auc; multiclass: accuracy; regression: rmse by default."
    )
    training: Training = Training()
    gate: Gate = Gate()
    triggers: Triggers = Triggers()
    schedule: RetrainSchedule | None = Field(
        default=None, description="Cron of the retrain deployment (reason=schedule)."
    )
    monitor: Monitor = Monitor()
    promotion: Promotion = Promotion()
    notifications: Notifications = Notifications()

    @model_validator(mode="after")
    def _columns(self) -> ModelSpec:
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"features listed twice: {dupes}")
        for key in ("target", "time_column"):
            col = getattr(self.data, key)
            if col in names:
                raise ValueError(f"data.{key} {col!r} is also listed as a feature")
        ids = self.data.delayed_labels
        if ids and ids.id_column in [*names, self.data.target, self.data.time_column]:
            raise ValueError(
                f"data.delayed_labels.id_column {ids.id_column!r} is a feature, the target or the time"
            )
        bad_slices = [c for c in self.gate.slices if c not in names]
        if bad_slices:
            raise ValueError(f"gate.slices {bad_slices} are not features")
        unknown = [c for c in self.data.checks.key if c not in names]
        if unknown:
            raise ValueError(f"data.checks.key {unknown} are not features")
        self._check_task()
        from evergreen.estimators import check_estimator  # lazy: imports sklearn/lightgbm

        est = self.training.estimator
        try:  # at load time, not an hour later inside a retrain
            check_estimator(est.kind, est.class_path, est.params, task=self.task)
        except ValueError as exc:
            raise ValueError(f"training.estimator: {exc}") from None
        for key, floor in (
            ("gate.floor", self.gate.floor),
            ("triggers.performance.floor", self.triggers.performance.floor),
        ):
            lo, hi = METRIC_RANGE[self.metric]
            if floor is not None and ((lo is not None and floor < lo) or (hi is not None and floor > hi)):
                span = f"[{'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}]"
                raise ValueError(f"{key} {floor} is outside {span} for {self.metric}")
        return self

    @model_validator(mode="before")
    @classmethod
    def _default_metric(cls, data: Any) -> Any:
        # No `metric` given: the task's own default (roc_auc / accuracy / rmse).
        if isinstance(data, dict) and "metric" not in data:
            task = data.get("task", "binary")
            if task in TASK_METRICS:
                return {**data, "metric": TASK_METRICS[task][0]}
        return data

    def _check_task(self) -> None:
        """The task type, metric and label keys must agree; each error names its key."""
        allowed = TASK_METRICS[self.task]
        if self.metric not in allowed:
            raise ValueError(
                f"metric {self.metric!r} does not fit task {self.task!r} (use one of {list(allowed)})"
            )
        check_estimated(self.task, self.triggers.estimated)
        d = self.data
        if self.task == "binary":
            if d.positive_label is None:
                raise ValueError("data.positive_label is required for task 'binary'")
            if d.labels is not None and d.positive_label not in d.labels:
                raise ValueError(f"data.positive_label {d.positive_label!r} is not in data.labels {d.labels}")
        elif self.task == "multiclass":
            if d.positive_label is not None:
                raise ValueError("data.positive_label is only valid for task 'binary'")
            if not d.labels or len(set(d.labels)) < 2 or len(set(d.labels)) != len(d.labels):
                raise ValueError(
                    "data.labels: task 'multiclass' needs the list of two or more distinct classes"
                )
        else:
            for key in ("positive_label", "labels"):
                if getattr(d, key) is not None:
                    raise ValueError(f"data.{key} is not valid for task 'regression' (the target is numeric)")

    @property
    def class_labels(self) -> list[Any]:
        """Classes in model order: binary [negative, positive] (negative may be unknown: None), multiclass the list."""
        d = self.data
        if self.task == "multiclass":
            return list(d.labels or [])
        if self.task == "binary":
            neg = [x for x in (d.labels or []) if x != d.positive_label]
            return [neg[0] if neg else None, d.positive_label]
        return []

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def numeric(self) -> list[str]:
        return [f.name for f in self.features if f.type == "numeric"]

    @property
    def categorical(self) -> list[str]:
        return [f.name for f in self.features if f.type == "categorical"]

    @property
    def higher_is_better(self) -> bool:
        return HIGHER_IS_BETTER[self.metric]

    @property
    def columns(self) -> list[str]:
        ids = [self.data.delayed_labels.id_column] if self.data.delayed_labels else []
        return [self.data.time_column, *self.feature_names, self.data.target, *ids]

    def feature(self, name: str) -> Feature:
        return next(f for f in self.features if f.name == name)

    def with_overrides(self, overrides: dict[str, Any]) -> ModelSpec:
        """A copy with dotted-key overrides applied, e.g. {"training.window.kind": "all"}."""
        data = self.model_dump(mode="json")
        for dotted, value in overrides.items():
            node = data
            *parents, leaf = dotted.split(".")
            for part in parents:
                if not isinstance(node.get(part), dict):
                    raise SpecError(f"override {dotted!r}: {part!r} is not a section of the spec")
                node = node[part]
            node[leaf] = value
            if parents == ["training", "holdout"] and leaf in _HOLDOUT_FORMS and value is not None:
                node[_HOLDOUT_FORMS[leaf]] = None  # one hold-out form replaces the other
        return parse_spec(data, source=f"{self.name} (with overrides)")


_HOLDOUT_FORMS = {"rows": "period", "period": "rows"}


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = [f"invalid model spec {source}:"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        # Whole-spec checks name their own keys (e.g. "metric 'rmse' does not fit task 'binary'").
        lines.append(f"  {loc}: {msg}" if loc else f"  {msg}")
    return "\n".join(lines)


def parse_spec(data: Any, source: str = "<dict>") -> ModelSpec:
    """Validate a dict into a ModelSpec, raising SpecError that names each bad key."""
    if not isinstance(data, dict):
        raise SpecError(f"invalid model spec {source}: expected a mapping at the top level")
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_format_errors(exc, source)) from None


def load_spec_file(path: Path) -> ModelSpec:
    """Read and validate one YAML spec file."""
    return parse_spec(read_yaml(path, "model spec", SpecError), source=str(path))


def load_spec(model: str, models_dir: Path) -> ModelSpec:
    """Load `models/<model>.yaml` and check its name matches the file."""
    spec = load_spec_file(models_dir / f"{model}.yaml")
    if spec.name != model:
        raise SpecError(
            f"invalid model spec {models_dir / f'{model}.yaml'}: name: {spec.name!r} != file name {model!r}"
        )
    return spec
