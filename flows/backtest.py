"""The backtest flow: replay a model's history under several retrain policies, in parallel, and report.

Load history -> cut into batches -> one task per policy (ThreadPoolTaskRunner; they share a memo of
fits and scores) -> rank + Pareto front -> table and markdown artifacts -> CSV, JSON and plots.
The replay itself is `evergreen.backtest` (pure); this module only sequences it and does the I/O.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from evergreen import backtest as bt
from evergreen.settings import get_settings
from evergreen.spec import ModelSpec, load_spec

SEEDS = Path("seeds")

# ---- progress: the CLI registers a callback; tasks run in this process's threads and call it ----

_hooks: list[bt.OnBatch] = []
_hooks_lock = threading.Lock()


@contextlib.contextmanager
def progress_hook(callback: bt.OnBatch) -> Iterator[None]:
    """Call `callback(policy, done, total)` after every scored batch of any policy while inside."""
    with _hooks_lock:
        _hooks.append(callback)
    try:
        yield
    finally:
        with _hooks_lock:
            _hooks.remove(callback)


def _notify(policy: str, done: int, total: int) -> None:
    for cb in list(_hooks):
        cb(policy, done, total)


# ---- data ----


def seed_frame(model: str) -> pd.DataFrame:
    """The model's seed history from seeds/ (Elec2 for the demo model)."""
    if model == "elec2":
        from evergreen.datasets import prepare_elec2

        return prepare_elec2(SEEDS / "elec2" / "electricity.csv")
    raise ValueError(f"no seed data for model {model!r}: pass a history file with --data (csv or parquet)")


def read_history(path: Path) -> pd.DataFrame:
    """A history file: csv or parquet."""
    from adapters.batch_files import read_batch

    return read_batch(path)


# ---- outputs ----


def artifact_key(model: str) -> str:
    return f"backtest-{model}".lower().replace("_", "-")


def _retrain_points(
    p: bt.PolicyResult, key: str
) -> tuple[list[str], list[float | None], list[str], list[bool]]:
    xs, ys, text, promoted = [], [], [], []
    for b in p.batches:
        if b.retrain:
            xs.append(b.end)
            ys.append(getattr(b, key))
            text.append(f"batch {b.batch}: {b.reason}{'' if b.promoted else ' (rejected)'}")
            promoted.append(b.promoted)
    return xs, ys, text, promoted


def write_html(report: bt.BacktestReport, path: Path) -> Path:
    """Interactive plot: accuracy and the spec's metric per batch for each policy, retrains marked."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    panels = [("accuracy", "accuracy"), ("metric", report.metric)]
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.05,
        row_heights=[0.4, 0.4, 0.2],
        subplot_titles=[f"prequential {label} per batch" for _, label in panels] + ["retrains (x: rejected)"],
    )
    palette = qualitative.Plotly + qualitative.D3
    for k, p in enumerate(report.policies):
        color = palette[k % len(palette)]
        name = f"{p.name} ({p.retrains} retrains)"
        for row, (key, label) in enumerate(panels, start=1):
            fig.add_trace(
                go.Scatter(
                    x=[b.end for b in p.batches],
                    y=[getattr(b, key) for b in p.batches],
                    mode="lines",
                    name=name,
                    legendgroup=p.name,
                    showlegend=row == 1,
                    line={"color": color, "width": 1.2},
                    hovertemplate=f"{p.name}<br>%{{x}}<br>{label} %{{y:.4f}}<extra></extra>",
                ),
                row=row,
                col=1,
            )
            xs, ys, text, promoted = _retrain_points(p, key)
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="markers",
                    legendgroup=p.name,
                    showlegend=False,
                    text=text,
                    marker={
                        "color": color,
                        "size": 6,
                        "symbol": ["circle" if ok else "x" for ok in promoted],
                    },
                    hovertemplate="%{text}<extra></extra>",
                ),
                row=row,
                col=1,
            )
        xs, _, text, promoted = _retrain_points(p, "accuracy")
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[p.name] * len(xs),
                mode="markers",
                legendgroup=p.name,
                showlegend=False,
                text=text,
                marker={
                    "color": color,
                    "size": 7,
                    "symbol": ["line-ns-open" if ok else "x" for ok in promoted],
                },
                hovertemplate="%{text}<extra></extra>",
            ),
            row=3,
            col=1,
        )
    for k in report.marked_drifts:
        start = report.policies[0].batches[k - report.warmup].start if report.policies else None
        if start:
            fig.add_vline(x=start, line={"dash": "dash", "color": "grey"})
    fig.update_layout(
        title=f"Policy backtest: {report.model} ({report.scored_batches} {report.batching}, "
        f"warm-up {report.warmup})",
        height=900,
        template="plotly_white",
        legend={"orientation": "v"},
    )
    fig.write_html(path, include_plotlyjs=True, full_html=True)
    return path


def write_png(report: bt.BacktestReport, path: Path, smooth: int = 4) -> Path | None:
    """Static plot (matplotlib): `smooth`-batch rolling mean of accuracy and metric, retrain rug below."""
    try:
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - matplotlib comes with mlflow
        get_run_logger().warning("matplotlib is not installed: skipping %s", path)
        return None
    fig = Figure(figsize=(12, 9), dpi=110, layout="constrained")
    axes = fig.subplots(3, 1, sharex=True, height_ratios=[4, 4, 0.45 * max(3, len(report.policies))])
    cmap = [f"C{i}" for i in range(10)]
    names = [p.name for p in report.policies]
    for k, p in enumerate(report.policies):
        color = cmap[k % len(cmap)]
        t = pd.to_datetime([b.end for b in p.batches])
        for ax, key in zip(axes[:2], ("accuracy", "metric"), strict=True):
            s = pd.Series([getattr(b, key) for b in p.batches], index=t, dtype=float)
            sm = s.rolling(smooth, min_periods=1).mean()
            label = f"{p.name}: {p.mean_accuracy or float('nan'):.3f} acc, {p.retrains} retrains"
            ax.plot(sm.index, sm.to_numpy(), color=color, lw=1.3, label=label if key == "accuracy" else None)
        rt = pd.to_datetime([b.end for b in p.batches if b.retrain and b.promoted])
        rj = pd.to_datetime([b.end for b in p.batches if b.retrain and not b.promoted])
        axes[2].scatter(rt, [k] * len(rt), marker="|", s=60, color=color)
        axes[2].scatter(rj, [k] * len(rj), marker="x", s=18, color=color, alpha=0.6)
    axes[0].set_ylabel(f"accuracy ({smooth}-batch mean)")
    axes[1].set_ylabel(f"{report.metric} ({smooth}-batch mean)")
    axes[2].set_yticks(range(len(names)), names, fontsize=8)
    axes[2].set_ylim(-0.7, len(names) - 0.3)
    axes[2].invert_yaxis()
    axes[2].set_xlabel("batch end  (| promoted retrain, x rejected by the gate)")
    for k in report.marked_drifts:
        if report.policies:
            when = pd.Timestamp(report.policies[0].batches[k - report.warmup].start)
            for ax in axes:
                ax.axvline(when, color="grey", ls="--", lw=0.8)
    for ax in axes[:2]:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower left", ncol=2)
    fig.suptitle(
        f"Policy backtest: {report.model}, prequential, {report.scored_batches} {report.batching} "
        f"after {report.warmup} warm-up"
    )
    fig.savefig(path)
    return path


def write_outputs(report: bt.BacktestReport, out_dir: Path) -> dict[str, str]:
    """CSV (per batch and summary), JSON, HTML and PNG under `out_dir`, named after the model."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{report.model}-backtest"
    files: dict[str, str] = {}
    pd.DataFrame(bt.per_batch_rows(report)).to_csv(f"{stem}-batches.csv", index=False)
    files["batches_csv"] = f"{stem}-batches.csv"
    pd.DataFrame(bt.summary_rows(report)).to_csv(f"{stem}.csv", index=False)
    files["summary_csv"] = f"{stem}.csv"
    Path(f"{stem}.json").write_text(report.model_dump_json(indent=1))
    files["json"] = f"{stem}.json"
    files["html"] = str(write_html(report, Path(f"{stem}.html")))
    png = write_png(report, Path(f"{stem}.png"))
    if png is not None:
        files["png"] = str(png)
    return files


# ---- tasks ----


@task(cache_policy=NO_CACHE)
def load_inputs(
    model: str, data: str | None, policies_file: str | None, policies: list[dict[str, Any]] | None
) -> tuple[ModelSpec, pd.DataFrame, bt.PolicySet]:
    spec = load_spec(model, get_settings().models_dir)
    frame = read_history(Path(data)) if data else seed_frame(model)
    if policies_file and policies:
        raise ValueError("give a policies file or inline policies, not both")
    if policies_file:
        pset = bt.load_policies(Path(policies_file))
    elif policies:
        pset = bt.parse_policies(policies, source="(flow parameter)")
    else:
        raise ValueError("no policies: pass a policies file (--policies FILE.yaml)")
    get_run_logger().info("%s: %d rows, %d policies", model, len(frame), len(pset.policies))
    return spec, frame, pset


@task(cache_policy=NO_CACHE, task_run_name="replay-{policy.name}")
def replay_policy(replay: bt.Replay, policy: bt.ResolvedPolicy, cache: bt.ReplayCache) -> bt.PolicyResult:
    result = bt.run_policy(replay, policy, cache=cache, on_batch=_notify)
    get_run_logger().info(
        "%s: mean accuracy %.4f, mean %s %s, %d retrains, %d promotions, %.1f train s",
        result.name,
        result.mean_accuracy or float("nan"),
        result.metric,
        "-" if result.mean_metric is None else f"{result.mean_metric:.4f}",
        result.retrains,
        result.promotions,
        result.train_seconds,
    )
    return result


@task(cache_policy=NO_CACHE)
def publish(report: bt.BacktestReport) -> list[dict[str, Any]]:
    rows = bt.summary_rows(report)
    key = artifact_key(report.model)
    create_table_artifact(
        table=rows, key=key, description=f"Policy backtest of {report.model}: one row per policy"
    )
    create_markdown_artifact(
        markdown=bt.to_markdown(report), key=f"{key}-report", description=f"Policy backtest of {report.model}"
    )
    return rows


@task(cache_policy=NO_CACHE)
def save_outputs(report: bt.BacktestReport, out_dir: str) -> dict[str, str]:
    files = write_outputs(report, Path(out_dir))
    get_run_logger().info("wrote %s", ", ".join(files.values()))
    return files


@flow(name="backtest", task_runner=ThreadPoolTaskRunner(), log_prints=False)
def backtest(
    model: str,
    policies_file: str | None = None,
    policies: list[dict[str, Any]] | None = None,
    data: str | None = None,
    batch_period: str | None = None,
    batch_rows: int | None = None,
    warmup: int = 4,
    drifts: list[str] | None = None,
    rank_by: Literal["accuracy", "roc_auc", "logloss"] | None = None,
    out_dir: str | None = None,
    write_files: bool = True,
) -> dict[str, Any]:
    """Replay `model`'s history under each policy and report metric vs retrains.

    Args:
        model: name of `models/<model>.yaml`.
        policies_file: YAML list of policies (see policies/elec2.yaml); or pass `policies` inline.
        policies: the same list, inline.
        data: history file (csv or parquet); default: the model's seed data.
        batch_period: batch length, e.g. "7D" (default when batch_rows is not given).
        batch_rows: rows per batch instead of a period.
        warmup: training-only batches before scoring starts.
        drifts: known drift points (timestamps or batch numbers) for detection delay; default: the file's.
        rank_by: "accuracy" or the spec's metric (default).
        out_dir: where CSV/JSON/HTML/PNG go; default EVERGREEN_HOME/reports/backtest.
        write_files: false: artifacts only.
    """
    log = get_run_logger()
    start = time.perf_counter()
    spec, frame, pset = load_inputs(model, data, policies_file, policies)
    marks: list[str | int] = list(drifts) if drifts is not None else list(pset.drifts)
    marks = [int(m) if isinstance(m, str) and m.isdigit() else m for m in marks]
    replay = bt.prepare(
        frame, spec, batch_period=batch_period, batch_rows=batch_rows, warmup=warmup, drifts=marks
    )
    resolved = [bt.resolve_policy(p, spec) for p in pset.policies]
    log.info("%d %s (%d warm-up), %d policies", replay.n_batches, replay.batching, warmup, len(resolved))
    cache = bt.ReplayCache(replay)
    futures = [replay_policy.submit(replay, rp, cache) for rp in resolved]
    results = [f.result() for f in futures]
    report = bt.summarize(replay, results, rank_by=rank_by)
    report = report.model_copy(update={"seconds": round(time.perf_counter() - start, 3), **cache.stats()})
    log.info(
        "compute seconds by kind (cache misses only): %s; calls: %s",
        report.compute_seconds,
        report.compute_calls,
    )
    table = publish(report)
    files: dict[str, str] = {}
    if write_files:
        target = out_dir or str(get_settings().reports_dir / "backtest")
        files = save_outputs(report, target)
    out = json.loads(report.model_dump_json())
    out.update({"table": table, "files": files})
    return out
