"""Tables and text of a backtest report (artifacts, CLI, CSV)."""

from __future__ import annotations

import math
from typing import Any

from evergreen.backtest import estimates
from evergreen.backtest.results import BacktestReport
from evergreen.spec import HIGHER_IS_BETTER


def shows_accuracy(report: BacktestReport) -> bool:
    """Whether accuracy is a column of its own: not for regression, nor when it is the spec's metric."""
    return report.metric != "accuracy" and any(p.mean_accuracy is not None for p in report.policies)


def direction(metric: str) -> str:
    """'' for higher-is-better metrics, ' (lower is better)' for logloss, rmse and mae."""
    return "" if HIGHER_IS_BETTER.get(metric, True) else " (lower is better)"


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
                "baseline": p.baseline,
                "trigger": p.trigger,
                "window": p.window,
                "gate": "on" if p.gated else "off",
                "mean_accuracy": _r(p.mean_accuracy),
                f"mean_{report.metric}": _r(p.mean_metric),
                "retrains": p.retrains,
                "promotions": p.promotions,
                "updates": p.updates,
                "train_seconds": _r(p.train_seconds, 2),
                "cpu_seconds": _r(p.train_seconds, 2),
                "cpu_vs_every_batch": _r(p.cpu_ratio, 3),
                "diff_vs_every_batch": _r(p.vs_every_batch.mean if p.vs_every_batch else None),
                "diff_ci_low": _r(p.vs_every_batch.low if p.vs_every_batch else None),
                "diff_ci_high": _r(p.vs_every_batch.high if p.vs_every_batch else None),
                "wall_seconds": _r(p.seconds, 2),
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
        f"champion before its labels are used. Ranked by mean {report.rank_by}{direction(report.rank_by)}, "
        "then fewer retrains.\n\n"
    )
    acc = shows_accuracy(report)
    cols = [
        "rank",
        "policy",
        "trigger",
        "window",
        "gate",
        *(["mean accuracy"] if acc else []),
        f"mean {m}{direction(m)}",
        f"{report.rank_by} vs every batch (95% CI)",
        "retrains",
        "promotions",
        "updates",
        "train CPU s",
        "CPU vs every batch",
        "wall s",
        "delay",
        "Pareto",
    ]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in summary_rows(report):
        cells = [
            r["rank"],
            (f"**{r['policy']}**" if r["policy"] == report.best else r["policy"])
            + (" (baseline)" if r["baseline"] else ""),
            r["trigger"],
            r["window"],
            r["gate"],
            *([_fmt(r["mean_accuracy"])] if acc else []),
            _fmt(r[f"mean_{m}"]),
            diff_cell(r),
            r["retrains"],
            r["promotions"],
            r["updates"],
            _fmt(r["train_seconds"], ".1f"),
            "-" if r["cpu_vs_every_batch"] is None else f"{100 * r['cpu_vs_every_batch']:.0f}%",
            _fmt(r["wall_seconds"], ".1f"),
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
    tail += estimates.markdown(report.policies)
    tail.append(
        "\nTrain CPU s: CPU seconds (time.thread_time around each single-threaded LightGBM fit) of all "
        "retrain fits, challengers and refits included (the warm-up fit excluded); a fit shared by several "
        "policies through the cache is charged to each. CPU vs every batch: that over the every-batch "
        "baseline's, measured in the same run. vs every batch: the mean per-batch difference from the "
        "every-batch baseline (same batches, paired), with a 95% Student-t interval whose batch count is "
        "shrunk for lag-1 autocorrelation; an interval that holds 0 is no evidence of a difference. Wall s: the policy's replay wall time (shared cache, so "
        "order-dependent). Rows marked (baseline) are added to every run: full retrain every batch and "
        "every N batches, the spec's model and window, no cooldown, no gate. The gate is `evergreen.gate.decide` on the "
        "spec's hold-out without the latency check."
    )
    return head + "\n".join(lines) + "\n" + "\n".join(tail) + "\n"


def diff_cell(row: dict[str, Any]) -> str:
    """'-0.0070 ± 0.0053': a table row's paired difference from the every-batch baseline (the t interval
    is symmetric, so its half-width says it all; `--json` has both ends)."""
    d, lo, hi = row.get("diff_vs_every_batch"), row.get("diff_ci_low"), row.get("diff_ci_high")
    if d is None:
        return "-"
    if lo is None or hi is None:
        return f"{d:+.4f}"
    return f"{d:+.4f} ± {(hi - lo) / 2:.4f}"


def _fmt(v: float | None, spec: str = ".4f") -> str:
    return "-" if v is None else format(v, spec)
