"""`idportrait curate`: build a FaceID dataset from LAION-style shards (run, report, sample, download)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(
    help="FaceID-6M-style curation of LAION-style parquet / webdataset shards.",
    no_args_is_help=True,
)
console = Console()


@app.command("run")
def run(
    inputs: list[str] = typer.Argument(..., help="Input shards: .parquet / .tar files, folders or globs (fsspec)."),
    out: str = typer.Option(..., "--out", "-o", help="Output folder (fsspec): shards/, index/, decisions/, stats/."),
    workers: int = typer.Option(1, help="Local worker processes (runner=local)."),
    runner: str = typer.Option("local", help="local | ray"),
    ray_address: str = typer.Option(None, help="Ray cluster address (runner=ray); default: start a local Ray."),
    detector: str = typer.Option(None, help="Face analyzer: insightface:antelopev2 (default) or dlib (offline)."),
    face_model_dir: str = typer.Option(None, help="Folder holding the insightface model pack (antelopev2/)."),
    min_side: int = typer.Option(512, help="Both image sides must be at least this many pixels."),
    min_face_ratio: float = typer.Option(0.04, help="Largest face bbox area / image area, at least."),
    max_faces: int = typer.Option(3, help="At most this many faces."),
    det_score: float = typer.Option(0.5, help="Face detection score threshold."),
    ner: bool = typer.Option(True, help="Accept captions with a spaCy PERSON entity when no keyword matched."),
) -> None:
    """Filter input shards into FaceID shards; resumes where a killed run stopped."""
    from rich.progress import Progress

    from idportrait.curate.config import CurateConfig
    from idportrait.curate.runner import pending_shards, run_local
    from idportrait.faces.analyzer import check_analyzer_name

    if detector:
        check_analyzer_name(detector)
    cfg = CurateConfig(
        min_side=min_side,
        min_face_ratio=min_face_ratio,
        max_faces=max_faces,
        det_score=det_score,
        use_ner=ner,
        face_model_dir=face_model_dir,
        **({"detector": detector} if detector else {}),
    )
    if runner == "ray":
        from idportrait.curate.ray_runner import run_ray

        summary = run_ray(inputs, out, cfg, address=ray_address)
    elif runner == "local":
        todo, _ = pending_shards(inputs, out)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("curating shards", total=len(todo))
            summary = run_local(inputs, out, cfg, workers=workers, on_shard_done=lambda _: progress.advance(task))
    else:
        raise typer.BadParameter(f"unknown runner {runner!r}; use local or ray", param_hint="--runner")
    console.print(
        f"{len(summary.processed)} shards curated ({len(summary.skipped)} already done): "
        f"{summary.kept} of {summary.samples} samples kept"
    )
    console.print(f"outputs: {out}/shards (webdataset), {out}/index (parquet), {out}/stats")


@app.command("report")
def report(
    out: str = typer.Argument(..., help="Output folder of `idportrait curate run`."),
    report_dir: Path = typer.Option(None, help="Where to write the report (default <out>/report)."),
) -> None:
    """Per-filter kept/dropped counts, resolution and face-area histograms."""
    from rich.table import Table

    from idportrait.curate import reasons
    from idportrait.curate.report import write_report
    from idportrait.errors import UserError

    result, folder = write_report(out, report_dir)
    if result.shards == 0:
        raise UserError("no finished shards to report on (run `idportrait curate run` first)", out)
    table = Table(title=f"{result.samples} samples, {result.shards} shards")
    for column, justify in (("filter", "left"), ("drop reason", "left"), ("dropped", "right"), ("remaining", "right")):
        table.add_column(column, justify=justify)
    table.add_row("input", "", "", str(result.samples))
    for reason, n, remaining in result.funnel:
        table.add_row(reasons.DESCRIPTIONS.get(reason, reason), reason, str(n), str(remaining))
    table.add_row("[bold]kept[/]", "", "", f"[bold]{result.kept}[/]")
    console.print(table)
    console.print(f"report: {folder}/report.md, report.json, resolution_hist.png, face_area_hist.png")


@app.command("sample")
def sample(out_dir: Path = typer.Argument(..., help="Folder for the sample input shards.")) -> None:
    """Write the bundled sample input shards (built from photos shipped in installed packages)."""
    from idportrait.curate.sample import build_sample

    paths = build_sample(out_dir)
    console.print(f"{len(paths)} sample shards written to {out_dir}")


@app.command("download")
def download(
    url_list: str = typer.Argument(..., help="Parquet with url/caption columns (LAION metadata)."),
    out: str = typer.Option(..., "--out", "-o", help="Folder for the downloaded webdataset shards."),
    processes: int = typer.Option(1, help="img2dataset processes."),
    threads: int = typer.Option(16, help="img2dataset threads per process."),
    min_side: int = typer.Option(512, help="Skip urls whose width/height columns are below this."),
) -> None:
    """Download images with img2dataset into webdataset shards for `curate run` (cluster extra)."""
    from idportrait.curate.img2dataset_stage import download_shards

    shards = download_shards(url_list, out, processes=processes, threads=threads, min_side=min_side)
    console.print(f"{len(shards)} webdataset shards written to {out}")
