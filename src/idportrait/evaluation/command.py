"""``idportrait evaluate``: ``run`` (generate, then score) from one config; ``score`` an existing folder.

Both split their work across the processes of ``accelerate launch`` / ``torchrun`` (`idportrait.processes`);
the main process merges the manifests and writes the report once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Score generated portraits against references (CLIP-T/I, DINO, FaceSim, FGIS, FID, speed).")


@app.command("run")
def run(
    config: Annotated[Path, typer.Option("--config", "-c", help="Evaluation config (.toml/.yaml/.json).")],
    score_only: Annotated[bool, typer.Option("--score-only", help="Skip generation; score what is there.")] = False,
    overwrite: Annotated[
        bool, typer.Option(help="Replace the images of methods generated with other settings.")
    ] = False,
) -> None:
    """Generate every missing image of every method (resumable), then score and write the report."""
    from idportrait.evaluation.config import load_config
    from idportrait.evaluation.records import read_manifest
    from idportrait.evaluation.runner import generate_all
    from idportrait.processes import launched_processes

    cfg = load_config(config)
    processes = launched_processes()
    records = read_manifest(cfg.output) if score_only else generate_all(cfg, overwrite=overwrite, processes=processes)
    _score_and_report(cfg.output, cfg.references, cfg.metrics, records, processes)


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
    from idportrait.processes import launched_processes

    records = load_generated(generated)
    _score_and_report(generated, references, load_metrics_spec(config), records, launched_processes())


def _score_and_report(run_dir: Path, references: Path, metrics, records, processes) -> None:
    """Every process scores its share of the images; the main one gathers the rows, computes the Fréchet distances
    and writes the report."""
    from dataclasses import replace

    from rich.console import Console

    from idportrait.errors import UserError
    from idportrait.evaluation.records import load_references
    from idportrait.evaluation.report import write_report
    from idportrait.evaluation.score import frechet_by_method, load_metric_models, score_records

    if not records:
        raise UserError("nothing to score: no generated images recorded", run_dir)
    refs = load_references(references)
    models = load_metric_models(replace(metrics, device=processes.device_for(metrics.device)))
    mine = processes.share(range(len(records)))
    rows_mine = score_records(run_dir, [records[i] for i in mine], refs, models, progress_bar=processes.is_main)
    scored = processes.gather(list(zip(mine, rows_mine, strict=True)))
    processes.close()  # the rest is the main process's alone
    if not processes.is_main:
        return
    rows = [row for _, row in sorted((pair for part in scored for pair in part), key=lambda pair: pair[0])]
    fid = frechet_by_method(run_dir, records, refs, models)
    paths = write_report(run_dir, rows, fid, models.fid_name, models.face_name, records, run_dir, refs)
    console = Console()
    console.print((run_dir / "summary.md").read_text("utf-8"), markup=False, highlight=False)
    for name, path in paths.items():
        console.print(f"{name}: {path}", highlight=False)


@app.command("rate")
def rate(
    generated: Path = typer.Option(..., "--generated", help="A run folder, <method>/<identity>/*.png, or batch PNGs."),
    references: Path = typer.Option(..., "--references", help="One photo (or sub-folder) per identity."),
    db: Path = typer.Option(..., "--db", help="SQLite file of the study (created on first use)."),
    sample: int | None = typer.Option(None, "--sample", min=1, help="Rate N images, balanced across methods."),
    seed: int = typer.Option(0, "--seed", help="Seeds the sample and every rater's order."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 = every interface)."),
    port: int = typer.Option(7861, help="Port."),
) -> None:
    """Serve the human-study page: raters score images 0-5 on prompt, FaceID and quality (saved at once)."""
    from rich.console import Console

    from idportrait.evaluation.rating_app import KEYBOARD_JS, Study, build_rating_app
    from idportrait.evaluation.rating_db import open_study
    from idportrait.evaluation.rating_items import collect_items
    from idportrait.evaluation.rating_sample import balanced_sample
    from idportrait.serve.address import check_listen_address

    check_listen_address(host, port)  # before the ratings file is created
    items = collect_items(generated, references)
    if sample is not None:
        items = balanced_sample(items, sample, seed)
    settings = {"seed": str(seed), "sample": "all" if sample is None else str(sample)}
    study = Study(open_study(db, [item.study for item in items], settings), items, seed)
    Console(stderr=True).print(
        f"rating page on http://{host}:{port}/ ; {len(items)} images, ratings are saved to {db}",
        highlight=False,
        soft_wrap=True,
    )
    build_rating_app(study).launch(server_name=host, server_port=port, head=KEYBOARD_JS, quiet=True)


@app.command("report")
def report(
    db: Path = typer.Option(..., "--db", help="The study's SQLite file (from `evaluate rate`)."),
    out: Path = typer.Option(..., "--out", help="Report folder, e.g. the scored run: human columns join its summary."),
    seed: int = typer.Option(0, "--seed", help="Seeds the bootstrap."),
    resamples: int = typer.Option(2000, "--resamples", min=100, help="Bootstrap resamples."),
) -> None:
    """Human ratings per method: means with 95 % bootstrap intervals, Krippendorff's alpha, a bar plot."""
    from rich.console import Console

    from idportrait.errors import UserError
    from idportrait.evaluation.rating_db import open_existing

    ratings = open_existing(db).ratings()
    if not ratings:
        raise UserError("no ratings yet", db)
    from idportrait.evaluation.human import human_agreement, human_summary, write_human_report

    summary = human_summary(ratings, seed, resamples)
    paths = write_human_report(out, summary, human_agreement(ratings), resamples, seed)
    console = Console()
    console.print(paths["table"].read_text("utf-8"), markup=False, highlight=False)
    for name, path in paths.items():
        console.print(f"{name}: {path}", highlight=False)
