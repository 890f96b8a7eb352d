"""Policy backtest: replay a time-ordered history as batches under competing retrain policies.

The loop, per scored batch (after `warmup` training-only batches):

1. **Score prequentially.** The current champion predicts the batch before its labels are used.
2. **Decide.** The policy's triggers (schedule, drift, performance, volume, in the spec's own
   vocabulary) look at the batch and say whether to retrain; the cooldown applies as in production.
3. **Retrain and gate.** A challenger is trained on every labelled row so far (the batch included),
   under the policy's training window. With the gate on, the spec's hold-out (the most recent
   labelled window) is held out, challenger and champion are both scored on it, and
   `evergreen.gate.decide` promotes or rejects, exactly as the retrain flow does.

Training, scoring, gating, drift and performance checks are the production functions
(`training.split/apply_window/fit/predict_scores`, `gate.decide`, `drift.measure_drift`,
`performance.measure_performance/evaluate_trigger`); only the loop lives here.

Policies can share work: a :class:`ReplayCache` memoises fitted models, scores, profiles and
verdicts by what they depend on (training rows, window, estimator, batch), so two policies that
retrain at the same point with the same window train once. Results are identical with or without
sharing; the reported train seconds are each model's own fit time, charged to every policy that uses
it.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evergreen import gate, training
from evergreen.drift import DriftReport, ReferenceProfile, build_profile, measure_drift
from evergreen.metrics import metric_value
from evergreen.performance import PerformanceReport, evaluate_trigger, measure_performance
from evergreen.policy import (
    Decision,
    combine,
    cooldown_check,
    drift_check,
    never,
    performance_check,
    schedule_check,
    volume_check,
)
from evergreen.spec import (
    HIGHER_IS_BETTER,
    DriftTrigger,
    Gate,
    ModelSpec,
    PerformanceTrigger,
    SpecError,
    VolumeTrigger,
    Window,
    _check_duration,
)

logger = logging.getLogger(__name__)

OnBatch = Callable[[str, int, int], None]
"""Progress callback: (policy name, scored batches done, scored batches in total)."""


class PolicyError(ValueError):
    """A policies file or policy that cannot be used; the message names the key and the problem."""


# --------------------------------------------------------------------------------------------------
# Policy vocabulary (the spec's trigger, window and gate sections, per policy)
# --------------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScheduleRule(_Strict):
    every: int = Field(ge=1, description="Retrain after this many scored batches without a retrain.")


class PolicyTrigger(_Strict):
    """When to retrain. Listed rules combine with OR; a schedule next to others acts as a fallback.

    Each rule is the spec's trigger section: fields given here override the model spec's values,
    fields left out come from the spec (so `drift: {threshold: 0.3}` keeps the spec's bins and share).
    """

    from_spec: bool = Field(
        default=False, description="Start from the spec's enabled drift/performance/volume."
    )
    schedule: ScheduleRule | None = None
    drift: DriftTrigger | None = None
    performance: PerformanceTrigger | None = None
    volume: VolumeTrigger | None = None
    cooldown: str | None = Field(default=None, description="Default: the spec's triggers.cooldown.")

    _dur = field_validator("cooldown")(classmethod(lambda cls, v: _check_duration(v)))


class Policy(_Strict):
    """One named policy: trigger + training window + gate (+ optional estimator params)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$", max_length=64)
    description: str = ""
    trigger: PolicyTrigger = PolicyTrigger()
    window: Window | None = Field(default=None, description="Default: the spec's training.window.")
    gate: Gate = Field(
        default=Gate(),
        description="true: the spec's gate; false: no gate (nothing held out, every model promoted); "
        "a mapping: the spec's gate with these fields overridden.",
    )
    refit: bool | None = Field(
        default=None,
        description="After a passed gate, refit on the hold-out too (two fits). Default: the spec's training.refit.",
    )
    params: dict[str, Any] = Field(default_factory=dict, description="Estimator params over the spec's.")

    @field_validator("trigger", mode="before")
    @classmethod
    def _trigger_words(cls, v: Any) -> Any:
        if v is None or v == "never":
            return {}
        if v == "spec":
            return {"from_spec": True}
        if isinstance(v, str):
            raise ValueError(f"{v!r} is not a trigger: use 'never', 'spec' or a mapping of rules")
        return v

    @field_validator("gate", mode="before")
    @classmethod
    def _gate_bool(cls, v: Any) -> Any:
        if v is True or v is None:
            return {}
        if v is False:
            return {"enabled": False}
        return v


class PolicySet(_Strict):
    """A policies file: the policies, and optionally drift points the user marks (for detection delay)."""

    policies: list[Policy] = Field(min_length=1)
    drifts: list[str | int] = Field(
        default_factory=list,
        description="Known drift points: timestamps, or batch numbers (0 = first batch).",
    )

    @model_validator(mode="after")
    def _unique(self) -> PolicySet:
        names = [p.name for p in self.policies]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"policy names must be unique; repeated: {dupes}")
        return self


def _format_errors(exc: ValidationError, source: str, raw: Any) -> str:
    lines = [f"invalid policies {source}:"]
    raw_list = raw.get("policies") if isinstance(raw, dict) else None
    for err in exc.errors():
        parts: list[str] = []
        loc = list(err["loc"])
        for i, p in enumerate(loc):
            if isinstance(p, int) and i > 0 and loc[i - 1] == "policies":
                name = None
                if isinstance(raw_list, list) and p < len(raw_list) and isinstance(raw_list[p], dict):
                    name = raw_list[p].get("name")
                parts[-1] = f"policies[{p}]" + (f" ({name})" if name else "")
            elif isinstance(p, int):
                parts[-1] = f"{parts[-1]}[{p}]" if parts else f"[{p}]"
            else:
                parts.append(str(p))
        where = ".".join(parts) or "(top level)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def parse_policies(data: Any, source: str = "<dict>") -> PolicySet:
    """Validate a list of policies (or {policies: [...], drifts: [...]}); errors name each bad key."""
    if isinstance(data, list):
        data = {"policies": data}
    if not isinstance(data, dict):
        raise PolicyError(
            f"invalid policies {source}: expected a list of policies or a mapping with `policies`"
        )
    try:
        return PolicySet.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(_format_errors(exc, source, data)) from None


def load_policies(path: Path) -> PolicySet:
    """Read and validate a policies YAML file."""
    if not path.is_file():
        raise PolicyError(f"policies file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise PolicyError(f"invalid policies {path}: not valid YAML: {exc}") from None
    return parse_policies(data, source=str(path))


@dataclass(frozen=True)
class ResolvedPolicy:
    """A policy merged onto a model spec: every number it runs with."""

    policy: Policy
    spec: ModelSpec
    schedule: int | None
    drift: DriftTrigger | None
    performance: PerformanceTrigger | None
    performance_floor: float | None
    volume: VolumeTrigger | None
    cooldown: str | None

    @property
    def name(self) -> str:
        return self.policy.name

    @property
    def gated(self) -> bool:
        return self.spec.gate.enabled

    def describe(self) -> str:
        """A one-line summary of the trigger, e.g. 'drift(psi>0.2) | schedule(every 8)'."""
        parts = []
        if self.performance:
            p = self.performance
            bits = [
                f"{self.spec.metric}<{self.performance_floor}" if self.performance_floor is not None else ""
            ]
            if p.max_drop is not None:
                bits.append(f"drop>{p.max_drop}")
            parts.append(f"performance({' or '.join(b for b in bits if b)} x{p.consecutive})")
        if self.drift:
            parts.append(f"drift({self.drift.statistic}>{self.drift.threshold}, share {self.drift.share})")
        if self.volume:
            parts.append(f"volume(+{self.volume.min_new_share:.0%})")
        if self.schedule:
            parts.append(f"schedule(every {self.schedule})")
        if parts and self.cooldown and "cooldown" in self.policy.trigger.model_fields_set:
            parts.append(f"cooldown {self.cooldown}")
        return " | ".join(parts) or "never"

    def window_label(self) -> str:
        w = self.spec.training.window
        if w.kind == "rolling":
            return f"rolling {w.period or f'{w.rows} rows'}"
        if w.kind == "decay":
            return f"decay {w.half_life}"
        return "all"


def _merge(base: BaseModel, override: BaseModel | None) -> Any:
    if override is None:
        return base
    data = {**base.model_dump(), **override.model_dump(exclude_unset=True)}
    return type(base).model_validate(data)


def resolve_policy(policy: Policy, spec: ModelSpec) -> ResolvedPolicy:
    """Apply a policy's window, gate and params to the spec and merge its triggers onto the spec's."""
    t = policy.trigger
    overrides: dict[str, Any] = {"gate": _merge(spec.gate, policy.gate).model_dump(mode="json")}
    if policy.window is not None:
        overrides["training.window"] = policy.window.model_dump(mode="json")
    if policy.params:
        overrides["training.estimator.params"] = {**spec.training.estimator.params, **policy.params}
    try:
        pspec = spec.with_overrides(overrides)
    except SpecError as exc:
        raise PolicyError(f"policy {policy.name!r}: {exc}") from None
    st = spec.triggers

    def pick(base: Any, given: Any) -> Any:
        if given is None and not (t.from_spec and base.enabled):
            return None
        merged = _merge(base, given)
        return merged if merged.enabled else None

    drift = pick(st.drift, t.drift)
    perf = pick(st.performance, t.performance)
    volume = pick(st.volume, t.volume)
    floor = None
    if perf is not None:
        floor = perf.floor if perf.floor is not None else spec.gate.floor
        if floor is None and perf.max_drop is None:
            raise PolicyError(
                f"policy {policy.name!r}: trigger.performance needs `floor` (or gate.floor in the spec) or `max_drop`"
            )
    cooldown = t.cooldown if "cooldown" in t.model_fields_set else st.cooldown
    return ResolvedPolicy(
        policy=policy,
        spec=pspec,
        schedule=t.schedule.every if t.schedule else None,
        drift=drift,
        performance=perf,
        performance_floor=floor,
        volume=volume,
        cooldown=cooldown,
    )


# --------------------------------------------------------------------------------------------------
# The replayed history
# --------------------------------------------------------------------------------------------------


def batch_bounds(
    times: pd.Series, *, period: str | None = None, rows: int | None = None
) -> list[tuple[int, int]]:
    """Row ranges [start, end) of consecutive batches of a time-sorted column.

    By period: calendar bins of `period` from the first timestamp's midnight (as
    datasets.weekly_batches); empty bins are skipped. By rows: chunks of `rows` (the last may be short).
    """
    n = len(times)
    if (period is None) == (rows is None):
        raise ValueError("give exactly one of a batch period or a batch row count")
    if n == 0:
        return []
    if rows is not None:
        if rows < 1:
            raise ValueError("batch rows must be positive")
        return [(s, min(s + rows, n)) for s in range(0, n, rows)]
    step = pd.Timedelta(_check_duration(period))
    origin = times.iloc[0].normalize()
    key = ((times - origin) // step).to_numpy(dtype=np.int64)
    cuts = np.flatnonzero(np.diff(key)) + 1
    edges = [0, *cuts.tolist(), n]
    return [(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


@dataclass(frozen=True)
class Replay:
    """A labelled, time-sorted history cut into batches; shared read-only by every policy."""

    spec: ModelSpec
    frame: pd.DataFrame
    bounds: tuple[tuple[int, int], ...]
    warmup: int
    batching: str
    marked: tuple[int, ...] = ()
    y: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0, dtype=np.int8))

    @property
    def n_batches(self) -> int:
        return len(self.bounds)

    @property
    def n_scored(self) -> int:
        return self.n_batches - self.warmup

    def time(self, row: int) -> pd.Timestamp:
        return self.frame[self.spec.data.time_column].iloc[row]

    def batch_start(self, i: int) -> pd.Timestamp:
        return self.time(self.bounds[i][0])

    def batch_end(self, i: int) -> pd.Timestamp:
        return self.time(self.bounds[i][1] - 1)


def prepare(
    frame: pd.DataFrame,
    spec: ModelSpec,
    *,
    batch_period: str | None = None,
    batch_rows: int | None = None,
    warmup: int = 4,
    drifts: Sequence[str | int | pd.Timestamp] = (),
) -> Replay:
    """Sort, keep labelled rows, cut into batches and locate marked drifts. Default batches: 7 days."""
    tcol = spec.data.time_column
    missing = [c for c in spec.columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the data lacks the spec's columns {missing}")
    frame = frame[spec.columns]
    if not pd.api.types.is_datetime64_any_dtype(frame[tcol]):
        frame = frame.assign(**{tcol: pd.to_datetime(frame[tcol])})
    unlabelled = int(frame[spec.data.target].isna().sum())
    if unlabelled:
        logger.info("dropping %d unlabelled rows: a backtest scores labelled rows only", unlabelled)
    frame = training.sort_by_time(frame.dropna(subset=[spec.data.target]), tcol)
    if batch_period is None and batch_rows is None:
        batch_period = "7D"
    bounds = batch_bounds(frame[tcol], period=batch_period, rows=batch_rows)
    if warmup < 1:
        raise ValueError("warmup must be at least 1 batch (the first champion trains on it)")
    if len(bounds) <= warmup:
        raise ValueError(f"{len(bounds)} batches leave nothing to score after {warmup} warm-up batches")
    starts = pd.DatetimeIndex([frame[tcol].iloc[s] for s, _ in bounds])
    marked: list[int] = []
    for d in drifts:
        if isinstance(d, bool):
            raise ValueError(f"drift point {d!r} is neither a batch number nor a timestamp")
        if isinstance(d, int | np.integer):
            k = int(d)
            if not 0 <= k < len(bounds):
                raise ValueError(f"drift point batch {k} is outside 0..{len(bounds) - 1}")
        else:
            try:
                ts = pd.Timestamp(d)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"drift point {d!r} is neither a batch number nor a timestamp") from exc
            k = int(starts.searchsorted(ts, side="right")) - 1
            if k < 0:
                raise ValueError(f"drift point {d} is before the data starts ({starts[0]})")
        if k < warmup:
            raise ValueError(
                f"drift point {d!r} falls in warm-up batch {k}; the first scored batch is {warmup}"
            )
        marked.append(k)
    batching = f"{batch_period} batches" if batch_period else f"{batch_rows}-row batches"
    return Replay(
        spec=spec,
        frame=frame,
        bounds=tuple(bounds),
        warmup=warmup,
        batching=batching,
        marked=tuple(sorted(set(marked))),
        y=training.labels(frame, spec),
    )


# --------------------------------------------------------------------------------------------------
# Shared, thread-safe memo of fits, scores and verdicts
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fitted:
    """A trained model and where its rows came from (row indices into Replay.frame)."""

    key: str
    model: Any
    seconds: float
    train: tuple[int, int]
    train_rows: int
    holdout: tuple[int, int] | None
    error: str | None = None


class ReplayCache:
    """Memoises fits, scores, profiles and verdicts over one Replay, safely across threads.

    Each key is computed once (others asking for it wait), so policies running in parallel share
    work. `timings` sums the CPU seconds (of the computing thread) of actual computation per kind
    (fit, predict, metric, gate, drift, performance, profile); cache hits cost nothing there. Nested
    work is counted in both kinds (a gate's or a metric's first scores also count as predict).
    """

    def __init__(self, replay: Replay) -> None:
        self.replay = replay
        self._items: dict[Any, Any] = {}
        self._locks: dict[Any, threading.Lock] = {}
        self._lock = threading.Lock()
        self._spans: dict[str, list[tuple[int, int, np.ndarray]]] = {}
        self._ahead: dict[str, int] = {}
        self.timings: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def _get(self, key: Any, kind: str, compute: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                return self._items[key]
            klock = self._locks.setdefault(key, threading.Lock())
        with klock:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            start = time.thread_time()
            value = compute()
            took = time.thread_time() - start
            with self._lock:
                self._items[key] = value
                self.timings[kind] = self.timings.get(kind, 0.0) + took
                self.counts[kind] = self.counts.get(kind, 0) + 1
            return value

    def stats(self) -> dict[str, Any]:
        """compute_seconds and compute_calls for a BacktestReport."""
        with self._lock:
            return {
                "compute_seconds": {k: round(v, 3) for k, v in sorted(self.timings.items())},
                "compute_calls": dict(sorted(self.counts.items())),
            }

    @staticmethod
    def model_key(spec: ModelSpec, end: int, holdout: bool) -> str:
        t = spec.training
        return json.dumps(
            {
                "window": t.window.model_dump(mode="json"),
                "estimator": t.estimator.model_dump(mode="json"),
                "seed": t.seed,
                "min_rows": t.min_train_rows,
                "holdout": t.holdout.model_dump(mode="json") if holdout else None,
                "end": end,
            },
            sort_keys=True,
        )

    def fit(self, spec: ModelSpec, end: int, *, holdout: bool) -> Fitted:
        """Train on rows [0, end) under the spec's window; with `holdout`, the spec's hold-out is left out."""
        key = self.model_key(spec, end, holdout)

        def compute() -> Fitted:
            pool = self.replay.frame.iloc[:end]
            hold: tuple[int, int] | None = None
            try:
                if holdout:
                    sp = training.split(pool, spec)
                    train, weights = sp.train, sp.weights
                    hold = (end - len(sp.holdout), end)
                else:
                    train, weights = training.apply_window(pool, spec.training.window, spec.data.time_column)
                    if len(train) < spec.training.min_train_rows:
                        raise ValueError(
                            f"only {len(train)} training rows; training.min_train_rows is "
                            f"{spec.training.min_train_rows}"
                        )
                cpu = time.thread_time()
                model, _wall = training.fit(spec, train, weights)
                seconds = time.thread_time() - cpu
            except ValueError as exc:
                return Fitted(key, None, 0.0, (0, 0), 0, hold, error=str(exc))
            first = int(train.index[0])
            return Fitted(key, model, seconds, (first, first + len(train)), len(train), hold)

        return self._get(("fit", key), "fit", compute)

    def scores(self, fitted: Fitted, lo: int, hi: int) -> np.ndarray:
        """The model's scores on rows [lo, hi).

        A predict call costs about 20 ms of fixed overhead on top of ~10 us per row, and a champion
        usually scores the rows that follow, so each miss predicts ahead: twice the asked rows at
        first, doubling with every further miss of the same model. Tree scores of a row do not depend
        on the other rows in the call, so the values are the same as one call per batch.
        """
        with self._lock:
            klock = self._locks.setdefault(("spans", fitted.key), threading.Lock())
        with klock:
            spans = self._spans.setdefault(fitted.key, [])
            for a, b, values in spans:
                if a <= lo and hi <= b:
                    return values[lo - a : hi - a]
            ahead = self._ahead.get(fitted.key, 2 * (hi - lo))
            end = min(len(self.replay.frame), max(hi, lo + ahead))
            start = time.thread_time()
            values = training.predict_scores(
                fitted.model, self.replay.frame.iloc[lo:end], self.replay.spec.feature_names
            )
            took = time.thread_time() - start
            spans.append((lo, end, values))
            self._ahead[fitted.key] = 2 * (end - lo)
            with self._lock:
                self.timings["predict"] = self.timings.get("predict", 0.0) + took
                self.counts["predict"] = self.counts.get("predict", 0) + 1
            return values[: hi - lo]

    def metric(self, fitted: Fitted, i: int, name: str) -> float | None:
        """The metric of the model's scores on batch i (shared by every policy with this champion)."""

        def compute() -> float | None:
            lo, hi = self.replay.bounds[i]
            return _f(metric_value(name, self.replay.y[lo:hi], self.scores(fitted, lo, hi)))

        return self._get(("metric", fitted.key, i, name), "metric", compute)

    def profile(self, fitted: Fitted, bins: int) -> ReferenceProfile:
        spec = self.replay.spec

        def compute() -> ReferenceProfile:
            a, b = fitted.train
            train = self.replay.frame.iloc[a:b]
            return build_profile(train, spec.numeric, spec.categorical, bins=bins, labels=self.replay.y[a:b])

        return self._get(("profile", fitted.key, bins), "profile", compute)

    def drift(self, fitted: Fitted, i: int, cfg: DriftTrigger) -> DriftReport:
        spec = self.replay.spec

        def compute() -> DriftReport:
            lo, hi = self.replay.bounds[i]
            batch = self.replay.frame.iloc[lo:hi]
            return measure_drift(self.profile(fitted, cfg.bins), batch, cfg, features=spec.features)

        return self._get(("drift", fitted.key, i, cfg.model_dump_json()), "drift", compute)

    def performance(
        self, fitted: Fitted, i: int, metric: str, reference: float | None, floor: float | None, alpha: float
    ) -> PerformanceReport:
        def compute() -> PerformanceReport:
            lo, hi = self.replay.bounds[i]
            return measure_performance(
                metric,
                self.replay.y[lo:hi],
                self.scores(fitted, lo, hi),
                reference=reference,
                floor=floor,
                alpha=alpha,
            )

        return self._get(("perf", fitted.key, i, metric, reference, floor, alpha), "performance", compute)

    def gate(self, spec: ModelSpec, challenger: Fitted, champion: Fitted) -> gate.GateDecision:
        assert challenger.holdout is not None
        lo, hi = challenger.holdout

        def compute() -> gate.GateDecision:
            y = self.replay.y[lo:hi]
            chal = self.scores(challenger, lo, hi)
            champ = self.scores(champion, lo, hi)
            # Latency is not replayed: it measures this machine now, not the policy.
            return gate.decide(spec.gate, spec.metric, y, chal, champ, latency_p95_ms=None)

        key = ("gate", challenger.key, champion.key, spec.gate.model_dump_json(), spec.metric)
        return self._get(key, "gate", compute)


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------


class BatchRecord(BaseModel):
    """One scored batch under one policy."""

    batch: int
    start: str
    end: str
    rows: int
    accuracy: float | None
    metric: float | None = Field(description="The spec's metric on this batch, scored by the champion.")
    champion: int = Field(description="The batch whose labels the champion last trained on.")
    retrain: bool
    reason: str
    detail: str = ""
    drift_score: float | None = None
    drifted: bool | None = None
    degraded: bool | None = None
    promoted: bool = False
    gate_passed: bool | None = None
    gate_ci_low: float | None = None
    train_seconds: float = 0.0


class PolicyResult(BaseModel):
    """One policy's replay: per-batch records and its totals."""

    name: str
    description: str = ""
    trigger: str
    window: str
    gated: bool
    config: dict[str, Any]
    metric: str
    batches: list[BatchRecord]
    mean_accuracy: float | None
    mean_metric: float | None
    retrains: int
    promotions: int
    train_seconds: float = Field(description="CPU seconds of the retrain fits (the warm-up fit excluded).")
    detection_delays: list[int | None] = Field(
        default_factory=list, description="Per marked drift: batches until the first retrain (None: none)."
    )
    mean_detection_delay: float | None = None
    rank: int | None = None
    pareto: bool = False
    seconds: float = Field(default=0.0, description="Wall seconds of this policy's replay.")

    def per_batch(self, key: str) -> list[Any]:
        return [getattr(b, key) for b in self.batches]


def _f(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _nanmean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def detection_delays(records: Sequence[BatchRecord], marked: Sequence[int]) -> list[int | None]:
    """Per marked drift k: batches from k to the first retrain decided at or after k (before the next mark)."""
    out: list[int | None] = []
    retrains = [r.batch for r in records if r.retrain]
    for j, k in enumerate(marked):
        nxt = marked[j + 1] if j + 1 < len(marked) else math.inf
        hits = [b for b in retrains if k <= b < nxt]
        out.append(hits[0] - k if hits else None)
    return out


def _stamp(ts: pd.Timestamp) -> str:
    return ts.isoformat()


def run_policy(
    replay: Replay,
    policy: Policy | ResolvedPolicy,
    *,
    cache: ReplayCache | None = None,
    on_batch: OnBatch | None = None,
) -> PolicyResult:
    """Replay one policy over the batches after warm-up and return its per-batch metrics and totals."""
    rp = policy if isinstance(policy, ResolvedPolicy) else resolve_policy(policy, replay.spec)
    spec = rp.spec
    cache = cache or ReplayCache(replay)
    wall = time.perf_counter()
    n = replay.n_batches
    first_end = replay.bounds[replay.warmup - 1][1]
    champ = cache.fit(spec, first_end, holdout=False)
    if champ.error:
        raise ValueError(
            f"policy {rp.name!r}: cannot train on the {replay.warmup} warm-up batches: {champ.error}"
        )
    champ_batch = replay.warmup - 1
    reference: float | None = None  # the champion's hold-out metric (performance max_drop)
    last_promotion: pd.Timestamp | None = None
    since = 0
    perf_history: list[PerformanceReport] = []
    records: list[BatchRecord] = []
    for i in range(replay.warmup, n):
        lo, hi = replay.bounds[i]
        since += 1
        rules: list[Decision] = []
        drift_score = drifted = degraded = None
        if rp.performance is not None:
            perf = cache.performance(
                champ, i, spec.metric, reference, rp.performance_floor, rp.performance.alpha
            )
            perf_history.append(perf)
            pdec = evaluate_trigger(perf_history, rp.performance)
            degraded = pdec.batches[-1]
            rules.append(performance_check(pdec.degraded, "; ".join(pdec.reasons)))
        if rp.drift is not None:
            rep = cache.drift(champ, i, rp.drift)
            drift_score, drifted = rep.drift_score, rep.dataset_drift
            rules.append(drift_check(rep.dataset_drift, rep.summary, rep.drift_score))
        if rp.volume is not None:
            rules.append(volume_check(hi - champ.train[1], champ.train_rows, rp.volume.min_new_share))
        if rp.schedule is not None:
            rules.append(schedule_check(since, rp.schedule))
        decision = combine(rules) if rules else never()
        now = replay.batch_end(i)
        if i == n - 1:
            decision = Decision(retrain=False, reason="end", detail="last batch: nothing left to score")
        elif decision.retrain:
            cd = cooldown_check(
                None if last_promotion is None else last_promotion.to_pydatetime(),
                now.to_pydatetime(),
                rp.cooldown,
                reason=decision.reason,
            )
            if not cd.retrain:
                decision = Decision(
                    retrain=False, reason="cooldown", detail=f"{decision.reason} fired; {cd.detail}"
                )
        rec: dict[str, Any] = {
            "batch": i,
            "start": _stamp(replay.batch_start(i)),
            "end": _stamp(now),
            "rows": hi - lo,
            "accuracy": cache.metric(champ, i, "accuracy"),
            "metric": cache.metric(champ, i, spec.metric),
            "champion": champ_batch,
            "retrain": decision.retrain,
            "reason": decision.reason,
            "detail": decision.detail,
            "drift_score": drift_score,
            "drifted": drifted,
            "degraded": degraded,
        }
        if decision.retrain:
            since = 0
            new: Fitted | None = None
            if rp.gated:
                chal = cache.fit(spec, hi, holdout=True)
                rec["train_seconds"] = chal.seconds
                if chal.error:
                    rec["detail"] += f"; challenger not trained: {chal.error}"
                else:
                    verdict = cache.gate(spec, chal, champ)
                    rec["gate_passed"] = verdict.passed
                    rec["gate_ci_low"] = None if verdict.ci_low is None else _f(verdict.ci_low)
                    if verdict.passed:
                        new = chal
                        refit = spec.training.refit if rp.policy.refit is None else rp.policy.refit
                        if refit:
                            new = cache.fit(spec, hi, holdout=False)
                            rec["train_seconds"] += new.seconds
                        reference = _f(verdict.challenger)
                    rec["detail"] += f"; gate: {verdict.summary}"
            else:
                new = cache.fit(spec, hi, holdout=False)
                rec["train_seconds"] = new.seconds
                if new.error:
                    rec["detail"] += f"; not trained: {new.error}"
                    new = None
                reference = None
            if new is not None and new.error is None:
                champ, champ_batch = new, i
                last_promotion = now
                perf_history = []
                rec["promoted"] = True
        records.append(BatchRecord(**rec))
        if on_batch is not None:
            on_batch(rp.name, i - replay.warmup + 1, replay.n_scored)
    delays = detection_delays(records, replay.marked)
    found = [d for d in delays if d is not None]
    return PolicyResult(
        name=rp.name,
        description=rp.policy.description,
        trigger=rp.describe(),
        window=rp.window_label(),
        gated=rp.gated,
        config=rp.policy.model_dump(mode="json", exclude_unset=True),
        metric=spec.metric,
        batches=records,
        mean_accuracy=_nanmean([r.accuracy for r in records]),
        mean_metric=_nanmean([r.metric for r in records]),
        retrains=sum(r.retrain for r in records),
        promotions=sum(r.promoted for r in records),
        train_seconds=float(sum(r.train_seconds for r in records)),
        detection_delays=delays,
        mean_detection_delay=float(np.mean(found)) if found else None,
        seconds=time.perf_counter() - wall,
    )


class BacktestReport(BaseModel):
    """Every policy's replay over one history, ranked, with the Pareto front of metric vs retrains."""

    model: str
    metric: str
    rank_by: str
    batching: str
    warmup: int
    n_batches: int
    scored_batches: int
    start: str
    end: str
    rows: int
    marked_drifts: list[int] = Field(default_factory=list)
    policies: list[PolicyResult]
    best: str | None = None
    pareto_front: list[str] = Field(default_factory=list)
    seconds: float | None = None
    compute_seconds: dict[str, float] = Field(
        default_factory=dict, description="CPU seconds of actual computation by kind (cache misses only)."
    )
    compute_calls: dict[str, int] = Field(default_factory=dict)

    def policy(self, name: str) -> PolicyResult:
        return next(p for p in self.policies if p.name == name)


def _score_of(p: PolicyResult, rank_by: str) -> float | None:
    return p.mean_accuracy if rank_by == "accuracy" else p.mean_metric


def summarize(
    replay: Replay, results: Sequence[PolicyResult], *, rank_by: str | None = None
) -> BacktestReport:
    """Rank policies (best mean `rank_by`, then fewer retrains) and mark the Pareto front."""
    metric = replay.spec.metric
    rank_by = rank_by or metric
    if rank_by not in ("accuracy", metric):
        raise ValueError(f"rank_by must be 'accuracy' or the spec's metric {metric!r}, not {rank_by!r}")
    higher = HIGHER_IS_BETTER[rank_by]
    sign = 1.0 if higher else -1.0

    def goodness(p: PolicyResult) -> float:
        v = _score_of(p, rank_by)
        return -math.inf if v is None else sign * v

    ordered = sorted(results, key=lambda p: (-goodness(p), p.retrains, p.name))
    ranked: list[PolicyResult] = []
    for r, p in enumerate(ordered, start=1):
        dominated = any(
            goodness(q) >= goodness(p)
            and q.retrains <= p.retrains
            and (goodness(q), -q.retrains) != (goodness(p), -p.retrains)
            for q in results
        )
        ranked.append(p.model_copy(update={"rank": r, "pareto": not dominated}))
    by_name = {p.name: p for p in ranked}
    policies = [by_name[p.name] for p in results]
    front = sorted((p for p in ranked if p.pareto), key=lambda p: p.retrains)
    tcol = replay.spec.data.time_column
    return BacktestReport(
        model=replay.spec.name,
        metric=metric,
        rank_by=rank_by,
        batching=replay.batching,
        warmup=replay.warmup,
        n_batches=replay.n_batches,
        scored_batches=replay.n_scored,
        start=_stamp(replay.frame[tcol].iloc[0]),
        end=_stamp(replay.frame[tcol].iloc[-1]),
        rows=len(replay.frame),
        marked_drifts=list(replay.marked),
        policies=policies,
        best=ordered[0].name if ordered else None,
        pareto_front=[p.name for p in front],
    )


def run_backtest(
    frame: pd.DataFrame,
    spec: ModelSpec,
    policies: Sequence[Policy],
    *,
    batch_period: str | None = None,
    batch_rows: int | None = None,
    warmup: int = 4,
    drifts: Sequence[str | int] = (),
    rank_by: str | None = None,
    on_batch: OnBatch | None = None,
    workers: int = 1,
) -> BacktestReport:
    """Replay every policy over `frame` (in `workers` threads, sharing one cache) and summarise."""
    start = time.perf_counter()
    replay = prepare(
        frame, spec, batch_period=batch_period, batch_rows=batch_rows, warmup=warmup, drifts=drifts
    )
    resolved = [resolve_policy(p, spec) for p in policies]
    cache = ReplayCache(replay)
    if workers <= 1:
        results = [run_policy(replay, rp, cache=cache, on_batch=on_batch) for rp in resolved]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(run_policy, replay, rp, cache=cache, on_batch=on_batch) for rp in resolved]
            results = [f.result() for f in futures]
    return summarize(replay, results, rank_by=rank_by).model_copy(
        update={"seconds": time.perf_counter() - start, **cache.stats()}
    )


# --------------------------------------------------------------------------------------------------
# Tables and text (artifacts, CLI, CSV)
# --------------------------------------------------------------------------------------------------


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


def summary_rows(report: BacktestReport) -> list[dict[str, Any]]:
    """One row per policy, best first: the table artifact and the CLI's `--json` "table"."""
    rows = []
    for p in sorted(report.policies, key=lambda p: p.rank or 0):
        rows.append(
            {
                "rank": p.rank,
                "policy": p.name,
                "trigger": p.trigger,
                "window": p.window,
                "gate": "on" if p.gated else "off",
                "mean_accuracy": _r(p.mean_accuracy),
                f"mean_{report.metric}": _r(p.mean_metric),
                "retrains": p.retrains,
                "promotions": p.promotions,
                "train_seconds": _r(p.train_seconds, 2),
                "detection_delay": _r(p.mean_detection_delay, 2),
                "pareto": p.pareto,
            }
        )
    return rows


def per_batch_rows(report: BacktestReport) -> list[dict[str, Any]]:
    """Long format: one row per (policy, scored batch), for the CSV."""
    out = []
    for p in report.policies:
        for b in p.batches:
            row = b.model_dump()
            row[report.metric] = row.pop("metric")
            out.append({"policy": p.name, **row})
    return out


def to_markdown(report: BacktestReport) -> str:
    """The markdown artifact: setup, ranked table, Pareto front, detection delays."""
    m = report.metric
    head = (
        f"# Policy backtest: {report.model}\n\n"
        f"{report.scored_batches} scored {report.batching} after {report.warmup} warm-up batches "
        f"({report.start[:10]} to {report.end[:10]}, {report.rows:,} rows). Each batch is scored by the "
        f"champion before its labels are used. Ranked by mean {report.rank_by}, then fewer retrains.\n\n"
    )
    cols = [
        "rank",
        "policy",
        "trigger",
        "window",
        "gate",
        "mean accuracy",
        f"mean {m}",
        "retrains",
        "promotions",
        "train s",
        "delay",
        "Pareto",
    ]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in summary_rows(report):
        cells = [
            r["rank"],
            f"**{r['policy']}**" if r["policy"] == report.best else r["policy"],
            r["trigger"],
            r["window"],
            r["gate"],
            _fmt(r["mean_accuracy"]),
            _fmt(r[f"mean_{m}"]),
            r["retrains"],
            r["promotions"],
            _fmt(r["train_seconds"], ".1f"),
            _fmt(r["detection_delay"], ".1f"),
            "yes" if r["pareto"] else "",
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    front = ", ".join(report.pareto_front) or "-"
    tail = [
        "",
        f"**Best:** {report.best}. **Pareto front** (mean {report.rank_by} vs retrains, fewest retrains first): {front}.",
    ]
    if report.marked_drifts:
        tail.append(
            f"\nDetection delay: batches from each marked drift ({', '.join(map(str, report.marked_drifts))}) "
            "to the first retrain decided at or after it."
        )
    tail.append(
        "\nTrain seconds are CPU seconds of the retrain fits. The gate is `evergreen.gate.decide` on the "
        "spec's hold-out without the latency check."
    )
    return head + "\n".join(lines) + "\n" + "\n".join(tail) + "\n"


def _fmt(v: float | None, spec: str = ".4f") -> str:
    return "-" if v is None else format(v, spec)
