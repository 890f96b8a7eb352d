"""The demo report: one self-contained HTML page (plotly.js inlined, so it works offline).

Pure: plain rows and dicts in, an HTML string out. No Prefect, no MLflow, no file I/O.

- ``weeks``: one dict per replayed week. Keys used (all optional except ``week``):
  ``week`` (int), ``start`` (date string), ``rows`` (int), ``drift_score`` (float | None),
  ``drift_detected`` (bool), ``performance_degraded`` (bool), ``accuracy`` (float | None: the champion's
  accuracy on this week BEFORE its labels were used; a regression model has none and gives ``metric``
  (float | None) with ``metric_name`` instead, e.g. rmse), ``champion_version`` (str: the champion after the
  week settled), ``retrains`` (list of ``{"version", "reason", "status", "trigger_event_id"}``; status is
  promoted / shadow / rejected / skipped).
- ``versions``: one dict per registered model version: ``version``, ``reason``, ``status``,
  ``tags`` (dict of the version's lineage tags), ``gate_report`` (markdown text, may be empty).
- ``others``: more models replayed side by side, each a dict with ``model``, ``weeks``, ``versions`` and
  optionally ``x_title``; each gets its own section (timeline, summary, versions) after the first model's.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

DECISION_COLORS = {
    "promoted": "#2ca02c",
    "shadow": "#9467bd",  # promotion.mode shadow: the monitor decides later (docs/release.md)
    "retired": "#8c564b",
    "passed": "#bcbd22",  # passed the gate, never champion (approval rejected, insufficient evidence)
    "rejected": "#d62728",
    "skipped": "#7f7f7f",
}
TRIGGER_SYMBOLS = {
    "drift": "diamond",
    "performance": "triangle-down",
    "volume": "square",
    "schedule": "circle",
    "manual": "star",
}
PLOT_DIV_ID = "evergreen-timeline"
# Tags shown first in each lineage table (the rest follow alphabetically).
LINEAGE_FIRST = (
    "reason",
    "trigger_event_id",
    "data_version",
    "data_rows",
    "train_start",
    "train_end",
    "holdout_start",
    "holdout_end",
    "gate_passed",
    "prefect_flow_run_id",
    "code_git_sha",
)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def score_of(weeks: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """(week key, label) of the plotted score: accuracy, or the spec's metric where there is no accuracy."""
    if any(w.get("accuracy") is not None for w in weeks) or not any(
        w.get("metric") is not None for w in weeks
    ):
        return "accuracy", "accuracy"
    return "metric", str(next((w["metric_name"] for w in weeks if w.get("metric_name")), "metric"))


def retrain_points(weeks: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One marker per retrain: (week, the week's score or 0.5, decision, trigger, version)."""
    key, _ = score_of(weeks)
    out = []
    for w in weeks:
        for r in w.get("retrains") or []:
            acc = w.get(key)
            out.append(
                {
                    "week": w["week"],
                    "y": acc if acc is not None else 0.5,
                    "status": str(r.get("status") or "skipped"),
                    "reason": str(r.get("reason") or ""),
                    "version": str(r.get("version") or ""),
                }
            )
    return out


def timeline_figure(
    weeks: Sequence[Mapping[str, Any]], x_title: str = "replay week (weeks since 1996-05-07)"
) -> Any:
    """Accuracy per week (left axis), drift score (right axis), retrain markers coloured by decision."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    key, label = score_of(weeks)
    x = [w["week"] for w in weeks]
    labels = [f"week {w['week']} ({w.get('start', '')})" for w in weeks]
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[w.get(key) for w in weeks],
            name=f"champion {label} (prequential)",
            mode="lines+markers",
            line={"color": "#1f77b4"},
            text=[
                f"{lab}<br>champion v{w.get('champion_version') or '-'}"
                for lab, w in zip(labels, weeks, strict=True)
            ],
            hovertemplate=f"%{{text}}<br>{label} %{{y:.3f}}<extra></extra>",
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[w.get("drift_score") for w in weeks],
            name="drift score (max decile PSI)",
            mode="lines",
            line={"color": "#ff7f0e", "dash": "dot"},
            text=labels,
            hovertemplate="%{text}<br>drift %{y:.3f}<extra></extra>",
        ),
        secondary_y=True,
    )
    flagged = [w for w in weeks if w.get("drift_detected") and w.get("drift_score") is not None]
    if flagged:
        fig.add_trace(
            go.Scatter(
                x=[w["week"] for w in flagged],
                y=[w["drift_score"] for w in flagged],
                name="drift detected",
                mode="markers",
                marker={"color": "#ff7f0e", "size": 9, "symbol": "x"},
                hovertemplate="week %{x}: drift detected (%{y:.3f})<extra></extra>",
            ),
            secondary_y=True,
        )
    points = retrain_points(weeks)
    for status, color in DECISION_COLORS.items():
        pts = [p for p in points if p["status"] == status]
        if not pts:
            continue
        fig.add_trace(
            go.Scatter(
                x=[p["week"] for p in pts],
                y=[p["y"] for p in pts],
                name=f"retrain: {status}",
                mode="markers",
                marker={
                    "color": color,
                    "size": 14,
                    "line": {"width": 1, "color": "black"},
                    "symbol": [TRIGGER_SYMBOLS.get(p["reason"], "circle") for p in pts],
                },
                text=[f"v{p['version'] or '-'} {p['reason']} -> {p['status']}" for p in pts],
                hovertemplate="week %{x}<br>%{text}<extra></extra>",
            ),
            secondary_y=False,
        )
    fig.update_layout(
        title=f"Elec2 replay: champion {label}, drift and retrains per week",
        template="plotly_white",
        height=480,
        legend={"orientation": "h", "y": -0.2},
        margin={"l": 60, "r": 60, "t": 60, "b": 40},
    )
    fig.update_xaxes(title_text=x_title, dtick=1 if len(weeks) <= 40 else None)
    fig.update_yaxes(title_text=label, secondary_y=False)
    fig.update_yaxes(title_text="drift score", secondary_y=True, rangemode="tozero")
    return fig


def _table(headers: Sequence[str] | None, rows: Sequence[Sequence[Any]], cls: str = "") -> str:
    if headers is None:
        body = "".join(
            f"<tr><th>{html.escape(_fmt(r[0]))}</th>"
            + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in r[1:])
            + "</tr>"
            for r in rows
        )
        return f'<table class="{cls}"><tbody>{body}</tbody></table>'
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def summary_rows(weeks: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """week, start, drift, trigger, gate decision, champion version, accuracy: also the CLI's table."""
    out = []
    for w in weeks:
        rs = w.get("retrains") or []
        trigger = ", ".join(str(r.get("reason")) for r in rs) or (
            "drift (no run)" if w.get("drift_detected") else ""
        )
        decision = ", ".join(
            f"v{r.get('version')} {r.get('status')}" if r.get("version") else str(r.get("status")) for r in rs
        )
        if w.get("shadow"):  # the release path's shadow decisions of the week (evergreen.reports.release)
            from evergreen.reports.release import shadow_text

            decision = "; ".join(x for x in (decision, shadow_text(w["shadow"])) if x)
        out.append(
            [
                w["week"],
                w.get("start", ""),
                w.get("drift_score"),
                trigger or "-",
                decision or "-",
                w.get("champion_version") or "-",
                w.get("accuracy") if w.get("accuracy") is not None else w.get("metric"),
            ]
        )
    return out


SUMMARY_HEADERS = ["week", "start", "drift", "trigger", "gate decision", "champion", "accuracy"]


def _ordered_tags(tags: Mapping[str, str]) -> list[tuple[str, str]]:
    first = [(k, tags[k]) for k in LINEAGE_FIRST if k in tags]
    rest = sorted((k, v) for k, v in tags.items() if k not in LINEAGE_FIRST)
    return first + rest


def _version_section(v: Mapping[str, Any], model: str = "") -> str:
    version = html.escape(str(v.get("version")))
    anchor = f"version-{html.escape(model)}-{version}" if model else f"version-{version}"
    status = str(v.get("status") or "")
    color = DECISION_COLORS.get(status, "#333")
    tags = dict(v.get("tags") or {})
    gate = str(v.get("gate_report") or "")
    if not gate and tags.get("gate_decision"):
        try:
            gate = json.dumps(json.loads(tags["gate_decision"]), indent=2)
        except ValueError:
            gate = tags["gate_decision"]
    rows = [(k, val if len(val) <= 300 else val[:300] + "...") for k, val in _ordered_tags(tags)]
    return (
        f'<section class="version" id="{anchor}" data-version="{version}">'
        f'<h3>Version {version} <span class="badge" style="background:{color}">{html.escape(status)}</span>'
        f" <small>reason: {html.escape(str(v.get('reason') or '-'))}</small></h3>"
        f"<details open><summary>Gate report</summary><pre>{html.escape(gate or '(none)')}</pre></details>"
        f"<details><summary>Lineage ({len(rows)} tags)</summary>{_table(['tag', 'value'], rows, 'lineage')}</details>"
        "</section>"
    )


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4} td{font-family:ui-monospace,monospace;word-break:break-all}
pre{background:#f8f8f8;padding:8px;overflow-x:auto;font-size:12px}
.badge{color:#fff;border-radius:4px;padding:1px 6px;font-size:13px}
.meta td{font-family:inherit}
"""


def build_report(
    weeks: Sequence[Mapping[str, Any]],
    versions: Sequence[Mapping[str, Any]],
    *,
    title: str = "Evergreen demo: elec2",
    meta: Mapping[str, Any] | None = None,
    others: Sequence[Mapping[str, Any]] = (),
    appendix: str = "",
) -> str:
    """The whole report page as an HTML string (plotly.js inlined, no network needed to view it).

    `appendix`: an HTML section added at the end (the release path: evergreen.reports.release)."""
    import plotly.io as pio

    fig = timeline_figure(weeks)
    plot = pio.to_html(fig, include_plotlyjs=True, full_html=False, div_id=PLOT_DIV_ID)
    meta_html = _table(None, [(k, v) for k, v in (meta or {}).items()], "meta") if meta else ""
    summary = _table(SUMMARY_HEADERS, summary_rows(weeks), "summary")
    sections = "".join(_version_section(v) for v in versions) or "<p>No model versions registered.</p>"
    n_promoted = sum(1 for v in versions if v.get("status") == "promoted")
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{meta_html}"
        f"<p>{len(weeks)} weeks replayed; {len(versions)} model versions registered, {n_promoted} promoted.</p>"
        f"<h2>Timeline</h2>{plot}"
        f"<h2>Weekly summary</h2>{summary}"
        f"<h2>Model versions: gate reports and lineage</h2>{sections}"
        + "".join(_other_model(o) for o in others)
        + appendix
        + "</body></html>"
    )


def _other_model(other: Mapping[str, Any]) -> str:
    """A further model's section: its own timeline (plotly.js is already on the page), summary, versions."""
    import plotly.io as pio

    model = str(other["model"])
    weeks, versions = other.get("weeks") or [], other.get("versions") or []
    fig = timeline_figure(weeks, str(other.get("x_title") or "replay week"))
    plot = pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id=f"{PLOT_DIV_ID}-{model}")
    sections = "".join(_version_section(v, model) for v in versions) or "<p>No model versions registered.</p>"
    n_promoted = sum(1 for v in versions if v.get("status") == "promoted")
    name = html.escape(model)
    return (
        f'<section class="model" id="model-{name}" data-model="{name}"><h1>Side by side: {name}</h1>'
        f"<p>{len(weeks)} weeks replayed; {len(versions)} model versions registered, {n_promoted} promoted.</p>"
        f"<h2>Timeline: {name}</h2>{plot}"
        f"<h2>Weekly summary: {name}</h2>{_table(SUMMARY_HEADERS, summary_rows(weeks), 'summary')}"
        f"<h2>Model versions of {name}: gate reports and lineage</h2>{sections}</section>"
    )
