"""``idportrait generate-batch``: every face in a folder x every prompt in a file, with any method.

    idportrait generate-batch --method ipadapter-faceid --faces faces/ --prompts prompts.txt --n 2 --out outputs/batch
    idportrait generate-batch --method instantid --faces me.jpg --prompt "a photo of a person in a garden"

Resumable: rerunning the same command only makes the images that are missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def generate_batch(
    faces: Annotated[Path, typer.Option(help="A photo, or a folder: each photo / sub-folder is one identity.")],
    prompts: Annotated[Path | None, typer.Option(help="Text file, one prompt per line (# comments skipped).")] = None,
    prompt: Annotated[list[str], typer.Option("--prompt", "-p", help="A prompt; repeatable (or use --prompts).")] = [],  # noqa: B006 (typer reads the default, nothing mutates it)
    method: Annotated[
        str, typer.Option(help="consistentid, consistentid-sdxl, ipadapter-faceid, instantid, plain-sd.")
    ] = "consistentid",
    base: Annotated[str | None, typer.Option(help="Base model (hub id or folder); default: the method's.")] = None,
    adapter: Annotated[str | None, typer.Option(help="Method checkpoint (file, folder or hub repo).")] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="Images per prompt and identity.")] = 1,
    seed: Annotated[int, typer.Option(help="First seed; image k of prompt i uses seed + i * n + k.")] = 0,
    steps: Annotated[int | None, typer.Option(min=1, help="Denoising steps [30; 4 with --accelerator].")] = None,
    guidance: Annotated[
        float | None, typer.Option(help="Classifier-free guidance scale [5.0; 1.0 with --accelerator].")
    ] = None,
    accelerator: Annotated[
        str | None, typer.Option(help="Few-step LoRA: lcm, hyper-sd or tcd (4 steps, guidance 1, its scheduler).")
    ] = None,
    accelerator_weights: Annotated[
        str | None, typer.Option(help="The accelerator's LoRA file, folder or hub repo (default: the registry's).")
    ] = None,
    compile: Annotated[bool, typer.Option(help="torch.compile the UNet (channels_last; slow first image).")] = False,
    face_backend: Annotated[
        str | None, typer.Option(help="insightface:buffalo_l, insightface:antelopev2 or dlib (default: the method's).")
    ] = None,
    set_: Annotated[
        list[str],
        typer.Option("--set", help="Method option KEY=VALUE (e.g. variant=faceid-plusv2, sdxl=true); repeatable."),
    ] = [],  # noqa: B006 (typer reads the default, nothing mutates it)
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1 ...")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto, float32, float16, bfloat16.")] = "auto",
    out: Annotated[Path, typer.Option(help="Output folder: <out>/<identity>/<prompt>_<k>.png.")] = Path(
        "outputs/batch"
    ),
) -> None:
    """Generate portraits for many identities and prompts; seeds, prompts and settings go into the PNG metadata."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from idportrait.errors import UserError
    from idportrait.generate.batch import identities, loader_options, read_prompts, run_batch
    from idportrait.methods import load_method
    from idportrait.pipelines.accelerators import sampling_settings

    if (prompts is None) == (not prompt):
        raise UserError("pass --prompts FILE or one or more --prompt TEXT (not both)")
    prompt_list = read_prompts(prompts) if prompts is not None else list(prompt)
    people = identities(faces)
    console = Console(stderr=True)
    given = {"face_backend": face_backend, "adapter": adapter, "compile": compile}
    given |= {"accelerator": accelerator, "accelerator_weights": accelerator_weights}
    options = loader_options(method, given, set_)
    steps, guidance = sampling_settings(accelerator, steps, guidance, plain=(30, 5.0))
    with console.status(f"loading {method}"):
        loaded = load_method(method, base=base, device=device, dtype=dtype, **options)
    total = len(people) * len(prompt_list) * n
    call_options = {"num_inference_steps": steps, "guidance_scale": guidance}
    settings = {"method": method, "base": base, "faces": str(faces), "prompts": prompt_list, "seed": seed,
                "n": n, "device": device, "dtype": dtype, **options, **call_options}  # fmt: skip
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("generating", total=total)
        counts = run_batch(
            loaded,
            method,
            faces,
            prompt_list,
            out,
            per_prompt=n,
            seed=seed,
            options=call_options,
            on_image=lambda path: progress.advance(task),
            settings=settings,
        )
    console.print(
        f"{counts['written']} images written, {counts['skipped']} already there, "
        f"{counts['identities']} identities -> {out} (settings.json lists them)"
    )
