"""`evergreen deployments render [--check]`: prefect.yaml rendered from models/*.yaml (deployments/render.py)."""

from __future__ import annotations

from pathlib import Path

import typer

FIX = "run `evergreen deployments render` (or `make deployments`) and commit the result"


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Each model's retrain, monitor and ingest deployments, rendered into prefect.yaml.",
        no_args_is_help=True,
    )
    app.add_typer(group, name="deployments")

    @group.command()
    def render(
        models_dir: Path | None = typer.Option(
            None, "--models-dir", help="Folder of <model>.yaml specs. Default: EVERGREEN_MODELS_DIR (models)."
        ),
        output: Path = typer.Option(Path("prefect.yaml"), "--output", "-o", help="File to write (or check)."),
        check: bool = typer.Option(
            False, "--check", help="Write nothing; exit 1 when the file differs from the render."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
    ) -> None:
        """Render prefect.yaml from the model specs: a retrain, monitor and ingest deployment per model."""
        from cli.output import fail
        from deployments import deployment_names, load_specs, render_prefect_yaml
        from evergreen.settings import get_settings
        from evergreen.spec import SpecError

        src = models_dir or get_settings().models_dir
        try:
            specs = load_specs(src)
        except SpecError as exc:
            fail(str(exc), as_json=as_json)
            return
        text = render_prefect_yaml(specs)
        current = output.read_text() if output.is_file() else None
        info = {
            "output": str(output),
            "models_dir": str(src),
            "models": [s.name for s in specs],
            "deployments": deployment_names(specs),
        }
        if check:
            if current != text:
                what = (
                    "is missing"
                    if current is None
                    else f"is stale (it differs from what {src}/*.yaml render)"
                )
                fail(f"{output} {what}: {FIX}", as_json=as_json, extra={**info, "stale": True})
            _report({**info, "status": "up-to-date"}, as_json)
            return
        if current != text:
            output.write_text(text)
        _report({**info, "status": "unchanged" if current == text else "written"}, as_json)


def _report(info: dict[str, object], as_json: bool) -> None:
    from cli.output import print_json

    if as_json:
        print_json(info)
        return
    names = info["deployments"]
    listed = ", ".join(names) if isinstance(names, list) else ""
    typer.echo(f"{info['output']}: {info['status']} ({listed})")
