"""The policy backtest as files: interactive HTML (plotly), a static PNG (matplotlib), CSV and JSON.

Pure in the sense of the core: a BacktestReport in, files out; no Prefect, no servers.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from evergreen import backtest as bt

log = logging.getLogger(__name__)


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


def _panels(report: bt.BacktestReport) -> list[tuple[str, str]]:
    """(BatchRecord field, label) per plotted panel: accuracy (classifiers) and the spec's metric."""
    metric = ("metric", f"{report.metric}{bt.direction(report.metric)}")
    return [("accuracy", "accuracy"), metric] if bt.shows_accuracy(report) else [metric]


def write_html(report: bt.BacktestReport, path: Path) -> Path:
    """Interactive plot: accuracy (classifiers) and the spec's metric per batch per policy, retrains marked."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    panels = _panels(report)
    rug = len(panels) + 1
    fig = make_subplots(
        rows=rug,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.05,
        row_heights=[0.4] * len(panels) + [0.2],
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
        xs, _, text, promoted = _retrain_points(p, "metric")
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
            row=rug,
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
        log.warning("matplotlib is not installed: skipping %s", path)
        return None
    panels = _panels(report)
    fig = Figure(figsize=(12, 9), dpi=110, layout="constrained")
    axes = fig.subplots(
        len(panels) + 1,
        1,
        sharex=True,
        height_ratios=[4] * len(panels) + [0.45 * max(3, len(report.policies))],
    )
    rug = axes[-1]
    first = panels[0][0]
    cmap = [f"C{i}" for i in range(10)]
    names = [p.name for p in report.policies]
    for k, p in enumerate(report.policies):
        color = cmap[k % len(cmap)]
        t = pd.to_datetime([b.end for b in p.batches])
        for ax, (key, _label) in zip(axes[:-1], panels, strict=True):
            s = pd.Series([getattr(b, key) for b in p.batches], index=t, dtype=float)
            sm = s.rolling(smooth, min_periods=1).mean()
            mean = p.mean_accuracy if key == "accuracy" else p.mean_metric
            short = "acc" if key == "accuracy" else report.metric
            label = (
                f"{p.name}: {mean if mean is not None else float('nan'):.3f} {short}, {p.retrains} retrains"
            )
            ax.plot(sm.index, sm.to_numpy(), color=color, lw=1.3, label=label if key == first else None)
        rt = pd.to_datetime([b.end for b in p.batches if b.retrain and b.promoted])
        rj = pd.to_datetime([b.end for b in p.batches if b.retrain and not b.promoted])
        rug.scatter(rt, [k] * len(rt), marker="|", s=60, color=color)
        rug.scatter(rj, [k] * len(rj), marker="x", s=18, color=color, alpha=0.6)
    for ax, (_key, label) in zip(axes[:-1], panels, strict=True):
        ax.set_ylabel(f"{label} ({smooth}-batch mean)")
    rug.set_yticks(range(len(names)), names, fontsize=8)
    rug.set_ylim(-0.7, len(names) - 0.3)
    rug.invert_yaxis()
    rug.set_xlabel("batch end  (| promoted retrain, x rejected by the gate)")
    for k in report.marked_drifts:
        if report.policies:
            when = pd.Timestamp(report.policies[0].batches[k - report.warmup].start)
            for ax in axes:
                ax.axvline(when, color="grey", ls="--", lw=0.8)
    for ax in axes[:-1]:
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
