"""`evergreen backtest-strategies`: batch, online and active learning replayed side by side (issue 12)."""

from __future__ import annotations

from typing import Any

import typer

from cli.output import print_json, run_guarded


def register(app: typer.Typer) -> None:
    app.command("backtest-strategies")(backtest_strategies)


def _table(rows: list[dict[str, Any]], metric: str) -> str:
    head = f"{'strategy':<16}{'accuracy':>10}{metric:>10}{'labels':>9}{'fits':>6}{'cpu s':>9}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['name']:<16}{r['mean_accuracy']:>10.4f}{r['mean_metric']:>10.4f}"
            f"{r['labels_used']:>9}{r['fits']:>6}{r['cpu_seconds']:>9.2f}"
        )
    return "\n".join(lines)


def backtest_strategies(
    model: str = typer.Argument(..., help="Model name: models/<model>.yaml (a binary task)."),
    batch_period: str = typer.Option("7D", "--batch-period", help="Batch length."),
    warmup: int = typer.Option(4, "--warmup", help="Training-only batches before scoring starts."),
    budget: float = typer.Option(0.1, "--budget", help="Active learning: share of each batch labelled."),
    river_class: str = typer.Option(
        "river.tree.HoeffdingAdaptiveTreeClassifier", "--river-class", help="The online learner."
    ),
    data: str = typer.Option(None, "--data", help="History file (csv/parquet). Default: the seed data."),
    seed: int = typer.Option(0, "--seed", help="Random-sampling control seed."),
    json_out: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Replay static, batch-weekly, online (per batch / per row) and active (margin vs random) learning.

    Same batches for all; mean per-batch accuracy and metric, labels used, fits and CPU seconds.
    Exit 0 on success, 1 on a bad spec, data or option.
    """

    def call() -> dict[str, Any]:
        from pathlib import Path

        from adapters.batch_files import read_batch
        from evergreen.backtest import strategies
        from evergreen.backtest.replay import prepare
        from evergreen.datasets import seed_frame
        from evergreen.settings import get_settings
        from evergreen.spec import load_spec

        if not 0 < budget <= 1:
            raise ValueError(f"--budget must be in (0, 1], got {budget}")
        spec = load_spec(model, get_settings().models_dir)
        frame = read_batch(Path(data)) if data else seed_frame(model)
        replay = prepare(frame, spec, batch_period=batch_period, warmup=warmup)
        done = strategies.compare(replay, river_class=river_class, budget=budget, seed=seed)
        return {
            "model": model, "batches": replay.n_batches, "scored": replay.n_scored,
            "batching": replay.batching, "budget": budget, "river_class": river_class,
            "metric": spec.metric, "strategies": [r.as_dict() for r in done],
        }  # fmt: skip

    out = run_guarded(call, as_json=json_out)
    if json_out:
        print_json(out)
        return
    typer.echo(
        f"{out['model']}: {out['scored']} scored {out['batching']} ({out['batches'] - out['scored']} warm-up); "
        f"online = {out['river_class']}; active budget {out['budget']:.0%} per batch"
    )
    typer.echo(_table(out["strategies"], out["metric"]))
