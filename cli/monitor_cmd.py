"""`evergreen monitor`: the monitor flow, in-process."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.output import fail, preflight_spec, print_json, run_guarded


def register(app: typer.Typer) -> None:
    app.command("monitor")(monitor)


def monitor(
    model: str = typer.Argument(..., help="Model name: models/<model>.yaml."),
    batch: Path = typer.Option(
        None, "--batch", help="Measure this .csv/.parquet file instead of registry rows."
    ),
    rev: str = typer.Option(
        None,
        "--rev",
        help="Measure the rows this data-registry rev ingested (default: HEAD's rows the champion never saw).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the full statistics as JSON."),
) -> None:
    """Measure drift (and performance, where labels exist) of the champion on new rows; emit the events.

    Exit 0 whether or not drift was detected; 1 on error.
    """
    if batch is not None and rev:
        fail("give --batch or --rev, not both", as_json=json_out)
    preflight_spec(model, None, as_json=json_out)
    from flows.monitor import monitor as monitor_flow

    result = run_guarded(
        lambda: monitor_flow(model=model, batch=str(batch) if batch is not None else None, data_rev=rev),
        as_json=json_out,
    )
    if json_out:
        print_json(result)
        return
    typer.echo(
        f"{model}: {result['n_rows']} rows ({result['source']}); data_version {result['data_version'] or '-'}"
    )
    if result["status"] == "no-champion":
        typer.echo(result["detail"])
        return
    d = result["drift"]
    score = "-" if d["drift_score"] is None else f"{d['drift_score']:.3f}"
    typer.echo(
        f"champion v{result['champion_version']}: drift {'DETECTED' if result['drift_detected'] else 'none'} "
        f"(max PSI {score}, drifted {d['drifted_features'] or 'none'}, share {d['drift_share']:.2f})"
    )
    for f in d["features"].values():
        mark = "*" if f["drifted"] else " "
        value = "-" if f["value"] is None else f"{f['value']:.4f}"
        p = "-" if f["p_value"] is None else f"{f['p_value']:.2g}"
        typer.echo(
            f"  {mark} {f['name']:<12} {f['statistic']}={value:<8} threshold {f['threshold']:<6} p={p}"
        )
    mv = d.get("multivariate")  # triggers.drift.multivariate: the domain classifier
    if mv:
        top = ", ".join(name for name, _ in mv["top_features"][:3]) or "-"
        typer.echo(
            f"multivariate: AUC {mv['auc']:.3f} p={mv['p_value']:.2g} -> "
            f"{'DRIFT' if mv['significant'] else 'none'} (separated by {top})"
        )
    if d.get("impact"):  # the champion's importance x each feature's effect size
        typer.echo("impact: " + ", ".join(f"{i['name']} {i['impact']:.3g}" for i in d["impact"][:5]))
    perf = result["performance"]
    if perf:
        r = perf["report"]
        value = "-" if r["value"] is None else f"{r['value']:.4f}"
        typer.echo(
            f"{r['metric']} {value} CI [{r['ci_low']}, {r['ci_high']}] floor {r['floor']}: degraded batches in a row "
            f"{perf['streak']}/{perf['required']} -> {'DEGRADED' if result['performance_degraded'] else 'ok'}"
        )
    else:
        typer.echo("performance: no labelled rows")
    est = result.get("estimate")  # triggers.estimated: the label-free CBPE estimate
    if est:
        v, lo, hi = ("-" if x is None else f"{x:.4f}" for x in (est["estimate"], est["lower"], est["upper"]))
        typer.echo(
            f"estimated {est['metric']} {v} [{lo}, {hi}] without labels: degraded "
            f"estimates in a row {est['streak']}/{est['required']} -> {'DEGRADED' if est['degraded'] else 'ok'}"
        )
    sh = result.get("shadow")  # promotion.mode: shadow (docs/release.md)
    if sh:
        typer.echo(
            f"shadow v{sh.get('version')} vs champion v{sh.get('champion_version')}: {sh.get('summary', '')}"
        )
    watch = result.get("watch")  # promotion.watch_batches after a promotion
    if watch:
        typer.echo(
            f"watch v{watch.get('version')} vs v{watch.get('previous_version')}: {watch.get('summary', '')}"
        )
    typer.echo(f"events: {', '.join(result['events'])}")
