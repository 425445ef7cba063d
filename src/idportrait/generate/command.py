"""``idportrait generate-batch``: every face in a folder x every prompt in a file, with any method.

    idportrait generate-batch --method ipadapter-faceid --faces faces/ --prompts prompts.txt --n 2 --out outputs/batch
    idportrait generate-batch --method instantid --faces me.jpg --prompt "a photo of a person in a garden"
    idportrait generate-batch --faces faces/ --init-image party.jpg --mask face -p "a photo of a person"

Resumable: rerunning the same command only makes the images that are missing; other settings into the same
``--out`` stop with one line naming them (``--overwrite`` replaces the images). Several processes split the work:

    accelerate launch -m idportrait.cli generate-batch --faces faces/ --prompts prompts.txt --out outputs/batch
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from idportrait import registry
from idportrait.generate.mode_options import ControlImage, ControlNet, InitImage, Mask, Strength
from idportrait.generate.options import (
    Accelerator,
    AcceleratorWeights,
    Adapter,
    Base,
    Compile,
    CompileMode,
    Device,
    Dtype,
    FaceBackend,
    Guidance,
    MethodName,
    MethodOptions,
)

OWN_OPTIONS = {"num_inference_steps": "--steps", "guidance_scale": "--guidance"}
"""Method keywords this command passes from its own options (so ``--set`` refuses them)."""


def generate_batch(
    faces: Annotated[Path, typer.Option(help="A photo, or a folder: each photo / sub-folder is one identity.")],
    prompts: Annotated[Path | None, typer.Option(help="Text file, one prompt per line (# comments skipped).")] = None,
    prompt: Annotated[list[str], typer.Option("--prompt", "-p", help="A prompt; repeatable (or use --prompts).")] = [],  # noqa: B006 (typer reads the default, nothing mutates it)
    method: MethodName = "consistentid",
    base: Base = None,
    adapter: Adapter = None,
    n: Annotated[int, typer.Option("--n", min=1, help="Images per prompt and identity.")] = 1,
    seed: Annotated[
        int,
        typer.Option(
            help="First seed; image k of prompt i uses seed + i * n + k, so no two images of a batch share a noise "
            "(generate instead reuses S, S+1, ... for every prompt to compare prompts)."
        ),
    ] = 0,
    steps: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Denoising steps [30, the IP-Adapter/InstantID demos' setting, keeps many-image batches affordable; "
            "generate defaults to ConsistentID's 50; 4 with --accelerator].",
        ),
    ] = None,
    guidance: Guidance = None,
    accelerator: Accelerator = None,
    accelerator_weights: AcceleratorWeights = None,
    compile: Compile = False,
    compile_mode: CompileMode = None,
    face_backend: FaceBackend = None,
    init_image: InitImage = None,
    mask: Mask = None,
    strength: Strength = None,
    control_image: ControlImage = None,
    controlnet: ControlNet = None,
    set_: MethodOptions = [],  # noqa: B006 (typer reads the default, nothing mutates it)
    device: Device = "auto",
    dtype: Dtype = "auto",
    out: Annotated[Path, typer.Option(help="Output folder: <out>/<identity>/<prompt>_<k>.png.")] = Path(
        "outputs/batch"
    ),
    overwrite: Annotated[
        bool, typer.Option(help="Replace the images of an earlier run with other settings in --out.")
    ] = False,
) -> None:
    """Generate portraits for many identities and prompts; seeds, prompts and settings go into the PNG metadata."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from idportrait.devices import resolve_device
    from idportrait.errors import UserError
    from idportrait.generate.batch import check_resumable, identities, loader_options, read_prompts, run_batch
    from idportrait.generate.checks import check_face_models, check_finite, check_output_folder
    from idportrait.generate.mode_options import read_mode_options
    from idportrait.methods import load_method
    from idportrait.pipelines.accelerators import sampling_settings
    from idportrait.pipelines.speed import resolve_compile_mode
    from idportrait.processes import launched_processes

    if (prompts is None) == (not prompt):
        raise UserError("pass --prompts FILE or one or more --prompt TEXT (not both)")
    check_output_folder(out)
    check_face_models(face_backend, None)
    check_finite("--guidance", guidance)
    resolve_device(device, dtype)
    prompt_list = read_prompts(prompts) if prompts is not None else list(prompt)
    people = identities(faces)
    given = {"face_backend": face_backend, "adapter": adapter, "compile": resolve_compile_mode(compile_mode or compile)}
    given |= {"accelerator": accelerator, "accelerator_weights": accelerator_weights, "controlnet": controlnet}
    options = loader_options(method, given, set_, OWN_OPTIONS)
    image_options = read_mode_options(method, init_image, mask, strength, control_image, controlnet)
    steps, guidance = sampling_settings(accelerator, steps, guidance, plain=(30, registry.default_guidance(method)))
    call_options = {"num_inference_steps": steps, "guidance_scale": guidance}
    settings = {"method": method, "base": base, "faces": str(faces), "prompts": prompt_list, "seed": seed,
                "n": n, "device": device, "dtype": dtype, **options, **call_options, **image_options}  # fmt: skip
    check_resumable(out, settings, overwrite)  # before any model loads
    processes = launched_processes()
    console = Console(stderr=True, quiet=not processes.is_main)
    with console.status(f"loading {method}"):
        loaded = load_method(method, base=base, device=processes.device_for(device), dtype=dtype, **options)
    total = len(processes.share(range(len(people) * len(prompt_list)))) * n
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
            options=call_options | image_options,
            on_image=lambda path: progress.advance(task),
            settings=settings,
            overwrite=overwrite,
            processes=processes,
            on_unreadable=lambda path: console.print(f"{path}: unreadable (empty or truncated); making it again"),
        )
    processes.close()
    redone = f" ({counts['redone']} of them unreadable ones made again)" if counts["redone"] else ""
    console.print(
        f"{counts['written']} images written{redone}, {counts['skipped']} already there, "
        f"{counts['identities']} identities, {processes.world_size} process(es) -> {out} (settings.json lists them)"
    )
