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

Modules: `policies` (the policies file), `resolve` (a policy merged onto the spec), `replay` (the
history cut into batches), `cache` (shared memo of fits, scores and verdicts), `engine` (the loop),
`results` (per-batch records and reports), `ranking` (rank and Pareto front), `tables` (CSV,
markdown and the CLI table).
"""

from evergreen.backtest.cache import Fitted, ReplayCache
from evergreen.backtest.engine import OnBatch, run_backtest, run_policy
from evergreen.backtest.policies import (
    Policy,
    PolicyError,
    PolicySet,
    PolicyTrigger,
    ScheduleRule,
    baseline_policies,
    load_policies,
    parse_policies,
    with_baselines,
)
from evergreen.backtest.ranking import summarize
from evergreen.backtest.replay import Replay, batch_bounds, prepare
from evergreen.backtest.resolve import ResolvedPolicy, resolve_policy
from evergreen.backtest.results import BacktestReport, BatchRecord, PolicyResult, detection_delays
from evergreen.backtest.tables import direction, per_batch_rows, shows_accuracy, summary_rows, to_markdown

__all__ = [
    "BacktestReport",
    "BatchRecord",
    "Fitted",
    "OnBatch",
    "Policy",
    "PolicyError",
    "PolicyResult",
    "PolicySet",
    "PolicyTrigger",
    "Replay",
    "ReplayCache",
    "ResolvedPolicy",
    "ScheduleRule",
    "baseline_policies",
    "batch_bounds",
    "detection_delays",
    "direction",
    "load_policies",
    "parse_policies",
    "per_batch_rows",
    "prepare",
    "resolve_policy",
    "run_backtest",
    "run_policy",
    "shows_accuracy",
    "summarize",
    "summary_rows",
    "to_markdown",
    "with_baselines",
]
