"""`evergreen backtest-search`: a small policy grid on a model's history, its accuracy-vs-CPU Pareto front
and the recommended spec section (issue 11)."""

from __future__ import annotations

import shlex
import sys
from typing import Any

import typer

from cli.output import policy_progress, print_json, run_guarded


def register(app: typer.Typer) -> None:
    app.command("backtest-search")(backtest_search)


def backtest_search(
    model: str = typer.Argument(..., help="Model name: models/<model>.yaml."),
    grid: str = typer.Option(None, "--grid", help="Grid YAML (triggers, updates, gates, cooldowns)."),
    max_cpu: float = typer.Option(
        0.2, "--max-cpu", help="Recommend within this share of the every-batch baseline's CPU."
    ),
    batch_period: str = typer.Option(None, "--batch-period", help="Batch length, e.g. 7D (the default)."),
    batch_rows: int = typer.Option(None, "--batch-rows", help="Rows per batch instead of a period."),
    warmup: int = typer.Option(4, "--warmup", help="Training-only batches before scoring starts."),
    data: str = typer.Option(None, "--data", help="History file (csv/parquet). Default: the seed data."),
    out: str = typer.Option(None, "--out", help="Write the recommended spec section (YAML) here."),
    json_out: bool = typer.Option(False, "--json", help="Print the results as JSON (no progress bar)."),
) -> None:
    """Replay every grid policy (plus the every-batch and every-N baselines) and print the Pareto front of
    mean accuracy vs training CPU seconds, and the recommended spec section with the command behind it.

    Exit 0 on success (also when nothing fits --max-cpu: the recommendation is then null), 1 on bad input.
    """
    command = "evergreen " + " ".join(shlex.quote(a) for a in sys.argv[1:])

    def call(on_batch: Any = None) -> dict[str, Any]:
        from pathlib import Path

        import yaml

        from adapters.batch_files import read_batch
        from evergreen import backtest as bt
        from evergreen.backtest import search
        from evergreen.datasets import seed_frame
        from evergreen.settings import get_settings
        from evergreen.spec import load_spec

        if max_cpu <= 0:
            raise ValueError(f"--max-cpu must be positive, got {max_cpu}")
        spec = load_spec(model, get_settings().models_dir)
        frame = read_batch(Path(data)) if data else seed_frame(model)
        g = search.load_grid(Path(grid) if grid else None)
        pols = search.grid_policies(g)
        report = bt.run_backtest(
            frame, spec, pols, batch_period=batch_period, batch_rows=batch_rows, warmup=warmup,
            rank_by=None if spec.task == "regression" else "accuracy", on_batch=on_batch,
            workers=2, baseline_every=g.baseline_every,
        )  # fmt: skip
        front = search.accuracy_cpu_front(report)
        best = search.recommend(report, max_cpu)
        section = None
        if best is not None:
            pol = next(p for p in pols if p.name == best.name)
            section = search.spec_section(pol)
            if out:
                Path(out).write_text(
                    f"# recommended by: {command}\n# {best.name}: mean accuracy {best.mean_accuracy:.4f}, "
                    f"CPU {100 * (best.cpu_ratio or 0):.0f}% of the every-batch baseline\n"
                    + yaml.safe_dump(section, sort_keys=False)
                )
        rows = [
            {
                "policy": p.name,
                "baseline": p.baseline,
                "mean_accuracy": p.mean_accuracy,
                "cpu_seconds": round(p.train_seconds, 3),
                "cpu_vs_every_batch": None if p.cpu_ratio is None else round(p.cpu_ratio, 4),
                "retrains": p.retrains,
                "updates": p.updates,
                "pareto": p in front,
            }
            for p in sorted(report.policies, key=lambda p: p.train_seconds)
        ]
        return {
            "model": model,
            "command": command,
            "max_cpu": max_cpu,
            "policies": rows,
            "pareto_front": [p.name for p in front],
            "recommended": None if best is None else best.name,
            "spec_section": section,
            "seconds": report.seconds,
        }

    if json_out:
        print_json(run_guarded(call, as_json=True))
        return
    with policy_progress(28) as on_batch:
        result = run_guarded(lambda: call(on_batch), as_json=False)
    _print(result)


def _print(r: dict[str, Any]) -> None:
    import yaml

    head = f"{'policy':<34}{'accuracy':>10}{'CPU s':>9}{'CPU %':>7}{'retrains':>9}{'updates':>8}  front"
    print(head)
    print("-" * len(head))
    for p in r["policies"]:
        acc = "-" if p["mean_accuracy"] is None else f"{p['mean_accuracy']:.4f}"
        pct = "-" if p["cpu_vs_every_batch"] is None else f"{100 * p['cpu_vs_every_batch']:.0f}%"
        name = p["policy"] + (" (baseline)" if p["baseline"] else "")
        print(
            f"{name:<34}{acc:>10}{p['cpu_seconds']:>9.1f}{pct:>7}{p['retrains']:>9}{p['updates']:>8}"
            f"  {'*' if p['pareto'] else ''}"
        )
    print(f"\nPareto front (accuracy vs CPU, cheapest first): {', '.join(r['pareto_front'])}")
    if r["recommended"] is None:
        print(f"No grid policy within {100 * r['max_cpu']:.0f}% of the every-batch CPU.")
        return
    print(f"Recommended (most accurate within {100 * r['max_cpu']:.0f}% CPU): {r['recommended']}")
    print(f"# reproduce: {r['command']}")
    print(yaml.safe_dump(r["spec_section"], sort_keys=False), end="")
