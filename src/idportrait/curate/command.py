"""`idportrait curate`: build a FaceID dataset from LAION-style shards (run, report, sample, download)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from idportrait.curate.config import CurateConfig, default
from idportrait.curate.options import DownloadConfig, RayOptions, StageOptions

app = typer.Typer(
    help="FaceID-6M-style curation of LAION-style parquet / webdataset shards.",
    no_args_is_help=True,
)
console = Console()


@app.command("run")
def run(
    ctx: typer.Context,
    inputs: list[str] = typer.Argument(..., help="Input shards: .parquet / .tar files, folders or globs (fsspec)."),
    out: str = typer.Option(..., "--out", "-o", help="Output folder (fsspec): shards/, index/, decisions/, stats/."),
    workers: int = typer.Option(1, help="Local worker processes (runner=local), one shard each at a time."),
    runner: str = typer.Option("local", help="local | ray"),
    ray_address: str = typer.Option(None, help="Ray cluster address (runner=ray); default: start a local Ray."),
    detector: str = typer.Option(None, help="Face analyzer: insightface:antelopev2 (default) or dlib (offline)."),
    face_model_dir: str = typer.Option(None, help="Folder holding the insightface model pack (antelopev2/)."),
    device: str = typer.Option("cpu", help="Face detection device: cpu, cuda, cuda:N or auto (insightface)."),
    detect_batch: int = typer.Option(StageOptions.detect_batch, help="Images per face detection call."),
    detect_threads: int = typer.Option(
        None, help="CPU threads per face-analysis session (default: one per core, or cores / --workers)."
    ),
    download_threads: int = typer.Option(DownloadConfig.threads, help="Concurrent downloads per process."),
    per_host: int = typer.Option(DownloadConfig.per_host, help="Concurrent downloads against one host."),
    download_deadline: float = typer.Option(
        DownloadConfig.deadline_s, help="Seconds one download attempt may take in all (connect, headers, body)."
    ),
    download_retries: int = typer.Option(DownloadConfig.retries, help="Retries after a timeout or a 5xx reply."),
    ray_download_tasks: int = typer.Option(None, help="runner=ray: concurrent download tasks (default: Ray's)."),
    ray_download_cpus: float = typer.Option(
        RayOptions.download_cpus, help="runner=ray: CPUs each download task reserves."
    ),
    ray_detect_actors: int = typer.Option(
        RayOptions.detect_actors, help="runner=ray: face detection actors (one model copy each)."
    ),
    ray_detect_gpus: float = typer.Option(
        None, help="runner=ray: GPUs per detection actor (default: 1 when the cluster has GPUs, else 0)."
    ),
    min_side: int = typer.Option(default("min_side"), help="Both image sides must be at least this many pixels."),
    min_face_ratio: float = typer.Option(default("min_face_ratio"), help="Largest face bbox area / image area."),
    max_faces: int = typer.Option(default("max_faces"), help="At most this many faces."),
    det_score: float = typer.Option(default("det_score"), help="Face detection score threshold."),
    drop_nsfw: str = typer.Option(
        ",".join(default("drop_nsfw")), help="NSFW column values that drop a row, comma-separated ('' keeps all)."
    ),
    max_punsafe: float = typer.Option(default("max_punsafe"), help="Drop punsafe at or above (>1: keep all)."),
    max_pwatermark: float = typer.Option(None, help="Drop rows with pwatermark at or above this (default: keep all)."),
    max_caption_chars: int = typer.Option(default("max_caption_chars"), help="Drop longer captions before any model."),
    assume_language: str = typer.Option(None, help="Every caption is in this language: no detection (LAION-2B-en)."),
    language_column: bool = typer.Option(
        default("use_language_column"), help="An input LANGUAGE column decides the language where it has a value."
    ),
    preset: str = typer.Option(
        None, help="Text-stage preset: faceid6m (the paper's keyword + NER rule exactly); switches given still apply."
    ),
    fasttext: bool = typer.Option(default("use_fasttext"), help="fastText language ID as evidence of other languages."),
    name_gazetteer: bool = typer.Option(
        default("use_name_gazetteer"), help="Name gazetteer: names are not foreign words; rare full names find people."
    ),
    nationality_adjectives: bool = typer.Option(
        not default("adjective_lists"), help="Nationality/ethnicity adjectives alone find a person ('Mexican vase')."
    ),
    normalise: bool = typer.Option(default("normalise"), help="Normalise captions before language, keywords, NER."),
    credit: bool = typer.Option(default("use_credit"), help="Accept captions ending in a credit '... by <Name>'."),
    ner: bool = typer.Option(default("use_ner"), help="Accept captions with a spaCy PERSON entity (after keywords)."),
    ner_recased: bool = typer.Option(
        default("use_ner_recased"), help="Second NER pass on the sentence-cased caption for what NER rejected."
    ),
    strict: bool = typer.Option(False, help="Exit with code 2 at the end when a shard could not be read."),
    overwrite: bool = typer.Option(False, help="Clear the outputs of a run with other settings in --out first."),
) -> None:
    """Filter input shards into FaceID shards; resumes where a killed run with the same settings stopped."""
    from rich.progress import Progress

    from idportrait.curate.runner import run_local
    from idportrait.errors import UserError
    from idportrait.faces.analyzer import check_analyzer_name

    if detector:
        check_analyzer_name(detector)
    for option, value in (
        ("--workers", workers),
        ("--detect-batch", detect_batch),
        ("--download-threads", download_threads),
        ("--per-host", per_host),
        ("--ray-detect-actors", ray_detect_actors),
        ("--detect-threads", 1 if detect_threads is None else detect_threads),
    ):
        if value < 1:
            raise UserError(f"{option} {value}: must be at least 1")
    if not 0 < download_deadline < float("inf"):
        raise UserError(f"--download-deadline {download_deadline}: must be a positive number of seconds")
    if download_retries < 0:
        raise UserError(f"--download-retries {download_retries}: must be 0 or more")
    options = StageOptions(
        device=device,
        detect_threads=detect_threads,
        detect_batch=detect_batch,
        download=DownloadConfig(
            deadline_s=download_deadline, retries=download_retries, per_host=per_host, threads=download_threads
        ),
    )
    cfg = CurateConfig(
        drop_nsfw=tuple(v.strip() for v in drop_nsfw.split(",") if v.strip()),
        max_punsafe=max_punsafe,
        max_pwatermark=max_pwatermark,
        max_caption_chars=max_caption_chars,
        min_side=min_side,
        assume_language=assume_language.strip().lower() if assume_language else None,
        use_language_column=language_column,
        use_fasttext=fasttext,
        use_name_gazetteer=name_gazetteer,
        adjective_lists=() if nationality_adjectives else default("adjective_lists"),
        normalise=normalise,
        use_credit=credit,
        use_ner=ner,
        use_ner_recased=ner_recased,
        min_face_ratio=min_face_ratio,
        max_faces=max_faces,
        det_score=det_score,
        face_model_dir=face_model_dir,
        **({"detector": detector} if detector else {}),
    )
    if preset:
        cfg = preset_settings(cfg, preset, ctx)
    if runner == "ray":
        from idportrait.curate.ray_runner import run_ray

        ray_options = RayOptions(
            address=ray_address,
            download_tasks=ray_download_tasks,
            download_cpus=ray_download_cpus,
            detect_actors=ray_detect_actors,
            detect_gpus=ray_detect_gpus,
        )
        summary = run_ray(inputs, out, cfg, options, ray_options, overwrite=overwrite)
    elif runner == "local":
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("curating shards", total=None)
            summary = run_local(
                inputs,
                out,
                cfg,
                workers=workers,
                options=options,
                overwrite=overwrite,
                on_start=lambda total: progress.update(task, total=total),
                on_shard_done=lambda _: progress.advance(task),
            )
    else:
        raise typer.BadParameter(f"unknown runner {runner!r}; use local or ray", param_hint="--runner")
    for failure in summary.failed:
        Console(stderr=True).print(f"[yellow]skipped:[/] {failure['error']}", highlight=False, soft_wrap=True)
    console.print(
        f"{len(summary.processed)} shards curated ({len(summary.skipped)} already done, "
        f"{len(summary.failed)} unreadable): {summary.kept} of {summary.samples} samples kept"
    )
    console.print(f"outputs: {out}/shards (webdataset), {out}/index (parquet), {out}/stats, {out}/failures")
    if strict and summary.failed:
        raise UserError(f"{len(summary.failed)} input shards could not be read (see {out}/failures); --strict")


TEXT_SWITCHES = {
    "fasttext": "use_fasttext",
    "name_gazetteer": "use_name_gazetteer",
    "nationality_adjectives": "adjective_lists",
    "normalise": "normalise",
    "credit": "use_credit",
    "ner": "use_ner",
    "ner_recased": "use_ner_recased",
}
"""`run` option -> the `CurateConfig` field it sets."""


def preset_settings(cfg: CurateConfig, preset: str, ctx: typer.Context) -> CurateConfig:
    """``cfg`` under ``--preset``, but for the text switches given on the command line."""
    from idportrait.curate.config import with_preset

    given = {
        field
        for option, field in TEXT_SWITCHES.items()
        if getattr(ctx.get_parameter_source(option), "name", None) == "COMMANDLINE"
    }
    try:
        return with_preset(cfg, preset, keep=given)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--preset") from None


@app.command("report")
def report(
    out: str = typer.Argument(..., help="Output folder of `idportrait curate run`."),
    report_dir: Path = typer.Option(None, help="Where to write the report (default <out>/report)."),
) -> None:
    """Per-filter kept/dropped counts, resolution and face-area histograms."""
    from rich.table import Table

    from idportrait.curate import reasons
    from idportrait.curate.report import write_report

    result, folder = write_report(out, report_dir)
    table = Table(title=f"{result.samples} samples, {result.shards} shards")
    for column, justify in (("filter", "left"), ("drop reason", "left"), ("dropped", "right"), ("remaining", "right")):
        table.add_column(column, justify=justify)
    table.add_row("input", "", "", str(result.samples))
    for reason, n, remaining in result.funnel:
        table.add_row(reasons.DESCRIPTIONS.get(reason, reason), reason, str(n), str(remaining))
    table.add_row("[bold]kept[/]", "", "", f"[bold]{result.kept}[/]")
    console.print(table)
    if result.steps:
        steps = Table(title="Text stage: samples each language rule / person step decided")
        steps.add_column("step")
        steps.add_column("samples", justify="right")
        for step, n in result.steps.items():
            steps.add_row(step, str(n))
        console.print(steps)
    for failure in result.failures:
        console.print(f"unreadable shard, not curated: {failure['error']}", highlight=False, soft_wrap=True)
    console.print(f"report: {folder}/report.md, report.json, resolution_hist.png, face_area_hist.png")


@app.command("sample")
def sample(out_dir: Path = typer.Argument(..., help="Folder for the sample input shards.")) -> None:
    """Write the bundled sample input shards (built from photos shipped in installed packages)."""
    from idportrait.curate.sample import build_sample
    from idportrait.errors import UserError

    if out_dir.exists() and not out_dir.is_dir():
        raise UserError("is an existing file; give a folder for the sample shards", out_dir)

    paths = build_sample(out_dir)
    console.print(f"{len(paths)} sample shards written to {out_dir}")


@app.command("download")
def download(
    url_list: str = typer.Argument(..., help="Parquet with url/caption columns (LAION metadata)."),
    out: str = typer.Option(..., "--out", "-o", help="Folder for the downloaded webdataset shards."),
    processes: int = typer.Option(1, min=1, help="img2dataset processes."),
    threads: int = typer.Option(16, min=1, help="img2dataset threads per process."),
    shard_size: int = typer.Option(1000, min=1, help="Rows per output tar (more tars: more for --workers to share)."),
    min_side: int = typer.Option(default("min_side"), help="The text stage's thresholds, as in `curate run`."),
    max_caption_chars: int = typer.Option(default("max_caption_chars"), help="Drop longer captions."),
    assume_language: str = typer.Option(None, help="Every caption is in this language: no detection."),
    ner: bool = typer.Option(default("use_ner"), help="Accept captions with a spaCy PERSON entity."),
) -> None:
    """Text stage, then img2dataset on the rows that passed, into webdataset shards for `curate run` (cluster extra)."""
    from idportrait.curate.config import CurateConfig
    from idportrait.curate.img2dataset_stage import download_shards
    from idportrait.curate.settings import check_out

    check_out(out, [url_list])
    cfg = CurateConfig(
        min_side=min_side,
        max_caption_chars=max_caption_chars,
        assume_language=assume_language.strip().lower() if assume_language else None,
        use_ner=ner,
    )
    shards, counts = download_shards(url_list, out, cfg, processes=processes, threads=threads, shard_size=shard_size)
    console.print(
        f"text stage: {counts['passed']} of {counts['rows']} rows passed on to img2dataset "
        f"({', '.join(f'{k} {v}' for k, v in counts['dropped'].items()) or 'none dropped'})"
    )
    console.print(f"{len(shards)} webdataset shards written to {out}; next: idportrait curate run {out} --out ...")
