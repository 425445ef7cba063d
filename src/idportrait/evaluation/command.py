"""``idportrait evaluate``: ``run`` (generate, then score) from one config; ``score`` an existing folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Score generated portraits against references (CLIP-T/I, DINO, FaceSim, FGIS, FID, speed).")


@app.command("run")
def run(
    config: Annotated[Path, typer.Option("--config", "-c", help="Evaluation config (.toml/.yaml/.json).")],
    score_only: Annotated[bool, typer.Option("--score-only", help="Skip generation; score what is there.")] = False,
) -> None:
    """Generate every missing image of every method (resumable), then score and write the report."""
    from idportrait.evaluation.config import load_config
    from idportrait.evaluation.records import read_manifest
    from idportrait.evaluation.runner import generate_all

    cfg = load_config(config)
    records = read_manifest(cfg.output) if score_only else generate_all(cfg)
    _score_and_report(cfg.output, cfg.references, cfg.metrics, records)


@app.command("score")
def score(
    generated: Annotated[Path, typer.Option("--generated", help="A run folder, or <method>/<identity>/*.png.")],
    references: Annotated[Path, typer.Option("--references", help="One photo per identity (file stem = identity).")],
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Take metric models from its [metrics].")
    ] = None,
) -> None:
    """Score an existing folder of generated images; the report is written into that folder."""
    from idportrait.evaluation.config import load_metrics_spec
    from idportrait.evaluation.records import load_generated

    _score_and_report(generated, references, load_metrics_spec(config), load_generated(generated))


def _score_and_report(run_dir: Path, references: Path, metrics, records) -> None:
    from rich.console import Console

    from idportrait.errors import UserError
    from idportrait.evaluation.records import load_references
    from idportrait.evaluation.report import write_report
    from idportrait.evaluation.score import frechet_by_method, load_metric_models, score_records

    if not records:
        raise UserError("nothing to score: no generated images recorded", run_dir)
    refs = load_references(references)
    models = load_metric_models(metrics)
    rows = score_records(run_dir, records, refs, models)
    fid = frechet_by_method(run_dir, records, refs, models)
    paths = write_report(run_dir, rows, fid, models.fid_name, models.face_name, records, run_dir, refs)
    console = Console()
    console.print((run_dir / "summary.md").read_text("utf-8"), markup=False, highlight=False)
    for name, path in paths.items():
        console.print(f"{name}: {path}", highlight=False)
