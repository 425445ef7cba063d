"""Generate prompts x seeds under a progress bar and write the outputs (`idportrait generate`, the demo)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def quiet_library_progress() -> None:
    """Hide diffusers/transformers loading bars (the command shows its own progress)."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


def generation_jobs(out: Path, prompts: list[str], seeds: list[int]) -> list[Any]:
    """The `Job` of every (prompt, seed): ``<out>/p<prompt index:02d>_s<seed>.png``, prompt-major."""
    from idportrait.generate.batch import Job

    return [Job(out / f"p{i:02d}_s{s}.png", text, s) for i, text in enumerate(prompts) for s in seeds]


def write_generations(
    method: Any, prepared: Any, settings: dict[str, Any], options: dict[str, Any], out: Path, console: Any
) -> list[Path]:
    """Generate every (prompt, seed) of ``settings`` with a progress bar; write PNGs, settings.json, face inputs.

    ``<out>/p<prompt index:02d>_s<seed>.png`` through the batch writer (`idportrait.generate.batch.write_images`:
    PNG text chunks ``prompt``, ``seed``, ``settings`` and ``idportrait``), ``face_inputs.safetensors`` when
    ``prepared`` can be saved (ConsistentID). Files are written atomically.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from idportrait.generate.batch import write_images, write_settings

    out.mkdir(parents=True, exist_ok=True)
    jobs = generation_jobs(out, settings["prompts"], settings["seeds"])
    if hasattr(method, "pipe"):
        method.pipe.set_progress_bar_config(disable=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("generating", total=len(jobs))
        info = {"method": settings["method"]}
        paths = write_images(method, prepared, jobs, options, settings, info, lambda _: progress.advance(task))
    if hasattr(prepared, "save"):
        prepared.save(out / "face_inputs.safetensors")
    write_settings(out, settings, paths)
    return paths
