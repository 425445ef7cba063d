"""``idportrait generate``: portraits of the person in one photo, from one or more prompts.

    idportrait generate --face me.jpg --prompt "a photo of a person as an astronaut" --n 4 --out outputs/me

Writes ``<out>/p<prompt>_s<seed>.png`` (prompt, seed and settings in the PNG text chunks), ``settings.json``
and ``face_inputs.safetensors`` (reuse it with ``--face-inputs`` to skip face analysis).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from idportrait import registry

DEFAULT_NEGATIVE = "monochrome, lowres, bad anatomy, worst quality, low quality, blurry"


def generate(
    prompt: Annotated[list[str], typer.Option("--prompt", "-p", help="Prompt; repeat for several.")],
    face: Annotated[Path | None, typer.Option(help="Reference photo of one person.")] = None,
    face_inputs: Annotated[
        Path | None, typer.Option(help="face_inputs.safetensors from an earlier run (skips face analysis).")
    ] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="Images per prompt (seeds S, S+1, ...).")] = 1,
    seed: Annotated[int, typer.Option(help="First seed.")] = 0,
    steps: Annotated[int, typer.Option(min=1, help="Denoising steps.")] = 50,
    guidance: Annotated[float, typer.Option(help="Classifier-free guidance scale.")] = 5.0,
    merge_step: Annotated[
        int, typer.Option(help="Steps 0..merge-step use the plain prompt, later ones the fused facial prompt.")
    ] = 30,
    id_scale: Annotated[float, typer.Option(help="Strength of the ID attention branch (0 = off).")] = 1.0,
    negative: Annotated[str, typer.Option(help="Negative prompt.")] = DEFAULT_NEGATIVE,
    height: Annotated[int, typer.Option(help="Image height in pixels (multiple of 8).")] = 512,
    width: Annotated[int, typer.Option(help="Image width in pixels (multiple of 8).")] = 512,
    base: Annotated[
        str, typer.Option(help="SD1.5-family base: hub id or local diffusers folder.")
    ] = registry.SD15_BASE,
    adapter: Annotated[
        str, typer.Option(help="ConsistentID checkpoint: hub repo, folder or file.")
    ] = registry.CONSISTENTID_REPO,
    image_encoder: Annotated[
        str | None, typer.Option(help=f"CLIP vision tower (default: the base's, else {registry.CLIP_VIT_H}).")
    ] = None,
    vae: Annotated[str | None, typer.Option(help="External VAE (default: sd-vae-ft-mse for the noVAE base).")] = None,
    face_backend: Annotated[str, typer.Option(help="insightface:buffalo_l or dlib (offline).")] = (
        f"insightface:{registry.INSIGHTFACE_CONSISTENTID}"
    ),
    parser: Annotated[str, typer.Option(help="Face parser: bisenet or landmarks (offline).")] = "bisenet",
    parser_weights: Annotated[
        str | None, typer.Option(help="BiSeNet face_parsing.pth (default: from the ConsistentID hub repo).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1 ...")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto (fp16 on GPU, fp32 on CPU), float32, float16, bfloat16.")] = "auto",
    offload: Annotated[bool, typer.Option(help="Keep models on the CPU until they run (low GPU memory).")] = False,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("outputs/generate"),
) -> None:
    """Generate portraits of the person in --face with ConsistentID (SD1.5)."""
    from rich.console import Console

    from idportrait.errors import UserError
    from idportrait.imageio import load_image
    from idportrait.methods.consistentid import load_consistentid_method
    from idportrait.pipelines.face_inputs import FaceInputs

    if (face is None) == (face_inputs is None):
        raise UserError("pass exactly one of --face PHOTO or --face-inputs FILE")
    photo = load_image(face) if face is not None else None
    loaded_inputs = FaceInputs.load(face_inputs) if face_inputs is not None else None

    quiet_library_progress()
    console = Console(stderr=True)
    with console.status("loading models"):
        method = load_consistentid_method(
            base=base,
            adapter=adapter,
            image_encoder=image_encoder,
            vae=vae,
            face_backend=face_backend,
            parser=parser,
            parser_weights=parser_weights,
            device=device,
            dtype=dtype,
            offload=offload,
            face_models=loaded_inputs is None,
        )
    with console.status("analysing the face"):
        prepared = loaded_inputs or method.prepare(photo, source=str(face))
    options = {
        "num_inference_steps": steps,
        "guidance_scale": guidance,
        "start_merge_step": merge_step,
        "id_scale": id_scale,
        "negative_prompt": negative,
        "height": height,
        "width": width,
    }
    settings = {
        "method": "consistentid",
        "face": str(face or face_inputs),
        "base": base,
        "adapter": adapter,
        "image_encoder": image_encoder,
        "vae": vae,
        "face_backend": face_backend,
        "parser": parser,
        "device": device,
        "dtype": dtype,
        "prompts": prompt,
        "seeds": [seed + k for k in range(n)],
        **options,
    }
    paths = write_generations(method, prepared, settings, options, out, console)
    console.print(f"wrote {len(paths)} images, settings.json and face_inputs.safetensors to {out}")
    typer.echo(str(out))


def quiet_library_progress() -> None:
    """Hide diffusers/transformers loading bars (the command shows its own progress)."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


def write_generations(
    method: Any, prepared: Any, settings: dict[str, Any], options: dict[str, Any], out: Path, console: Any
) -> list[Path]:
    """Generate every (prompt, seed) of ``settings`` with a progress bar; write PNGs, settings.json, face inputs.

    PNG text chunks: ``prompt``, ``seed``, ``settings`` (JSON). Files are written atomically.
    """
    from PIL.PngImagePlugin import PngInfo
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from idportrait.imageio import save_image, write_json

    out.mkdir(parents=True, exist_ok=True)
    prompts, seeds, steps = settings["prompts"], settings["seeds"], options["num_inference_steps"]
    method.pipe.set_progress_bar_config(disable=True)
    paths: list[Path] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("generating", total=len(prompts) * steps)
        for p_idx, text in enumerate(prompts):
            done = p_idx * steps
            images = method.generate(
                prepared,
                [text],
                seeds,
                callback=lambda step, _total, done=done: progress.update(task, completed=done + step),
                **options,
            )
            for seed, image in zip(seeds, images, strict=True):
                info = PngInfo()
                info.add_text("prompt", text)
                info.add_text("seed", str(seed))
                info.add_text("settings", json.dumps(settings))
                path = out / f"p{p_idx:02d}_s{seed}.png"
                save_image(path, image, pnginfo=info)
                paths.append(path)
    prepared.save(out / "face_inputs.safetensors")
    write_json(out / "settings.json", {**settings, "images": [p.name for p in paths]})
    return paths
