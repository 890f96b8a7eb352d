"""Helpers of benchmarks/retrain.py: scaled Elec2 rows, per-step clocks, Prefect task-run timings.

The per-step clock wraps the functions the retrain flow calls (module attributes, in this benchmark
process only) and charges each call its *self* time: a timed call inside another (predict inside
the latency check) is taken out of the outer one, so the steps add up without double counting.
Nothing in evergreen/, tasks/ or flows/ knows about it.
"""

from __future__ import annotations

import functools
import importlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

# (module, attribute, step). The attribute is patched where the flow's code looks it up.
STEPS: list[tuple[str, str, str]] = [
    ("adapters.dvc_registry", "read_dataset", "dvc_read"),
    ("evergreen.validation", "validate", "gx_validate"),
    ("evergreen.training", "split", "split_window"),
    ("evergreen.training", "refit_rows", "split_window"),
    ("evergreen.training", "fit", "fit"),
    ("adapters.mlflow_registry", "load_sklearn", "champion_load"),
    ("evergreen.training", "predict_scores", "predict_holdout"),
    ("evergreen.training", "batch_latency_p95_ms", "latency_check"),
    ("evergreen.gate", "decide", "gate_bootstrap"),
    ("tasks.registry", "frame_md5", "lineage_hash"),
    ("tasks.registry", "build_profile", "drift_profile"),
    ("tasks.registry", "feature_importance", "drift_profile"),
    ("evergreen.drift.multivariate", "sample_bytes", "reference_sample"),
    ("evergreen.estimate", "calibration_artifacts", "cbpe_calibration"),
    ("adapters.mlflow_registry", "log_run", "mlflow_log"),
    ("adapters.mlflow_promotion", "register_once", "mlflow_register"),
    ("adapters.mlflow_registry", "set_alias", "mlflow_alias"),
]
KEEP = {"split", "refit_rows"}  # results kept for the bare fits (the very rows and weights the flow fit on)
# Steps that own what they call: the latency check's predictions are the latency check, and MLflow's
# logging of the model (its signature example) is MLflow logging.
ABSORB = {"latency_check", "mlflow_log"}


class StepClock:
    """Self time per step (wall and process CPU), and the last result of the functions in KEEP."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.kept: dict[str, Any] = {}
        self._children: list[tuple[float, float]] = []
        self._absorbing = 0

    def reset(self) -> None:
        self.seconds, self.cpu, self.kept = {}, {}, {}

    def wrap(self, fn: Callable[..., Any], step: str, name: str) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if self._absorbing:
                return fn(*args, **kwargs)
            self._children.append((0.0, 0.0))
            self._absorbing += step in ABSORB
            start, cpu = time.perf_counter(), time.process_time()
            try:
                out = fn(*args, **kwargs)
            finally:
                self._absorbing -= step in ABSORB
                elapsed, used = time.perf_counter() - start, time.process_time() - cpu
                inner, inner_cpu = self._children.pop()
                self.seconds[step] = self.seconds.get(step, 0.0) + elapsed - inner
                self.cpu[step] = self.cpu.get(step, 0.0) + used - inner_cpu
                if self._children:
                    w, c = self._children[-1]
                    self._children[-1] = (w + elapsed, c + used)
            if name in KEEP:
                self.kept[name] = out
            return out

        return timed

    @contextmanager
    def installed(self) -> Iterator[StepClock]:
        saved = []
        for module, attr, step in STEPS:
            mod = importlib.import_module(module)
            saved.append((mod, attr, getattr(mod, attr)))
            setattr(mod, attr, self.wrap(getattr(mod, attr), step, attr))
        try:
            yield self
        finally:
            for mod, attr, fn in saved:
                setattr(mod, attr, fn)


def scale_elec2(seed_rows: pd.DataFrame, rows: int, seed: int, jitter: float) -> pd.DataFrame:
    """`rows` rows with the Elec2 schema, spread evenly over the seed's own time span.

    Row i gets the time start + i * span / rows (unique, microseconds) and the features and label of
    the seed row whose half hour holds that time (so `day` and `period` still match the clock); the
    other numeric features get N(0, jitter) noise, seeded, clipped to their spec range [0, 1]. The
    hold-out (7 days) and decay window (half-life 4 weeks) then cover the same calendar as on Elec2,
    with rows / 45,312 times the rows.
    """
    t = seed_rows["timestamp"].to_numpy(dtype="datetime64[us]").astype(np.int64)
    step = int(np.median(np.diff(t)))
    span = int(t[-1] - t[0]) + step
    i = np.arange(rows, dtype=np.int64)
    q, r = divmod(span, rows)  # i * span would overflow int64 microseconds
    times = t[0] + i * q + (i * r) // rows
    src = np.minimum(np.searchsorted(t, times, side="right") - 1, len(t) - 1)
    out = seed_rows.iloc[src].reset_index(drop=True)
    out["timestamp"] = times.astype("datetime64[us]")
    rng = np.random.default_rng(seed)
    for col in ("nswprice", "nswdemand", "vicprice", "vicdemand", "transfer"):
        noisy = out[col].to_numpy() + rng.normal(0.0, jitter, rows)
        out[col] = np.clip(noisy, 0.0, 1.0)
    return out


def task_runs(flow_run_id: str) -> dict[str, Any]:
    """The flow run's task runs from the Prefect API: seconds per task name, and the wall time they cover."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        flow = client.read_flow_run(flow_run_id)
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow.id])), limit=200
        )
    per_task: dict[str, float] = {}
    spans = []
    for r in runs:
        if r.start_time is None or r.end_time is None:
            continue
        spans.append((r.start_time.timestamp(), r.end_time.timestamp()))
        name = r.name.rsplit("-", 1)[0]
        per_task[name] = per_task.get(name, 0.0) + (spans[-1][1] - spans[-1][0])
    covered, end = 0.0, float("-inf")
    for a, b in sorted(spans):  # union of the intervals: nested task runs count once
        if b > end:
            covered += b - max(a, end)
            end = b
    flow_s = None
    if flow.start_time is not None and flow.end_time is not None:
        flow_s = flow.end_time.timestamp() - flow.start_time.timestamp()
    return {
        "flow_run_s": None if flow_s is None else round(flow_s, 3),
        "task_runs": len(runs),
        "covered_by_task_runs_s": round(covered, 3),
        "per_task_s": {k: round(v, 3) for k, v in sorted(per_task.items(), key=lambda kv: -kv[1])},
    }


def bare_fit(spec: Any, rows: pd.DataFrame, weights: np.ndarray | None) -> dict[str, float]:
    """lightgbm.LGBMClassifier(**the spec's params).fit on the same rows and weights, nothing else."""
    import lightgbm

    from evergreen.training import labels

    params = {
        "random_state": spec.training.seed,
        "n_jobs": 1,
        "verbose": -1,
        **spec.training.estimator.params,
    }
    x, y = rows[spec.numeric + spec.categorical], labels(rows, spec)
    wall, cpu = time.perf_counter(), time.process_time()
    lightgbm.LGBMClassifier(**params).fit(
        x, y, sample_weight=weights, categorical_feature=spec.categorical or "auto"
    )
    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}
