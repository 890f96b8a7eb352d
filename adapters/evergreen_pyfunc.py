"""The `python_function` loader of Evergreen's logged models: pyfunc predicts the natural output.

MLflow copies this file into each logged model's `code/` folder and imports it by its bare name when
`mlflow.pyfunc.load_model` loads the model, so it must stay standalone: no imports from Evergreen,
only mlflow, numpy and pandas, which every serving environment of the model has.

- classification (binary, multiclass): a DataFrame of probabilities, one column per class label, in
  the MLmodel's `class_labels` order (binary: negative, positive);
- regression: a 1-D float array of predicted values.

The sklearn flavour of the same model is untouched: `mlflow.sklearn.load_model` still returns the
fitted Pipeline, which is what Evergreen itself scores with.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

TASK_KEY = "evergreen_task"
LABELS_KEY = "class_labels"


class NaturalOutput:
    """Wraps the fitted Pipeline; `predict` gives class probabilities by label, or values."""

    def __init__(self, pipeline: Any, task: str, labels: list[str]) -> None:
        self.pipeline = pipeline
        self.task = task
        self.labels = labels

    def get_raw_model(self) -> Any:
        return self.pipeline

    def predict(self, data: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        frame = pd.DataFrame(data)
        if self.task == "regression":
            return np.asarray(self.pipeline.predict(frame), dtype=float)
        proba = np.asarray(self.pipeline.predict_proba(frame), dtype=float)
        out = np.zeros((len(frame), len(self.labels)))
        # Columns by class index: a class missing from the training rows scores 0.
        out[:, np.asarray(self.pipeline.classes_, dtype=np.int64)] = proba
        return pd.DataFrame(out, columns=self.labels, index=frame.index)


def _load_pyfunc(path: str) -> NaturalOutput:
    """Called by mlflow.pyfunc.load_model with the model's data path."""
    import mlflow.sklearn
    from mlflow.models import Model

    model_dir = os.path.dirname(path) if os.path.isfile(path) else path
    conf = Model.load(os.path.join(model_dir, "MLmodel")).flavors["python_function"]
    raw = mlflow.sklearn._load_pyfunc(path).get_raw_model()
    return NaturalOutput(raw, conf.get(TASK_KEY, "binary"), list(conf.get(LABELS_KEY) or []))
