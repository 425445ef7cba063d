"""``idportrait generate``: portraits of the person in one or more photos, from one or more prompts, with any method.

    idportrait generate --face me.jpg --prompt "a photo of a person as an astronaut" --n 4 --out outputs/me
    idportrait generate --method ipadapter-faceid --face me1.jpg --face me2.jpg -p "a portrait" --set variant=faceid
    idportrait generate --face me.jpg --init-image party.jpg --mask face -p "a photo of a person"   # repaint a face

Writes ``<out>/p<prompt>_s<seed>.png`` (prompt, seed and settings in the PNG text chunks), ``settings.json``
and, for ConsistentID, ``face_inputs.safetensors`` (reuse it with ``--face-inputs`` to skip face analysis).
Several ``--face`` photos are averaged by the methods that allow it (IP-Adapter-FaceID, InstantID).
ConsistentID runs with its LoRA fused into the base weights (`fuse_lora`; ``--no-fuse-lora`` keeps it separate).
``--init-image`` / ``--mask`` / ``--control-image`` switch ConsistentID to img2img, inpainting or ControlNet
(`idportrait.generate.mode_options`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from idportrait import registry
from idportrait.generate.mode_options import (
    CONSISTENTID_METHODS,
    ControlImage,
    ControlNet,
    InitImage,
    Mask,
    Strength,
)
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

OWN_OPTIONS = {"num_inference_steps": "--steps", "guidance_scale": "--guidance", "negative_prompt": "--negative",
                 "height": "--height", "width": "--width", "merge_fraction": "--merge-fraction",
                 "start_merge_step": "--merge-step", "id_scale": "--id-scale"}  # fmt: skip
"""Method keywords this command passes from its own options (so ``--set`` refuses them)."""


def generate(
    prompt: Annotated[list[str], typer.Option("--prompt", "-p", help="Prompt; repeat for several.")],
    face: Annotated[
        list[Path], typer.Option(help="Reference photo of one person; repeat to average several (where allowed).")
    ] = [],  # noqa: B006 (typer reads the default, nothing mutates it)
    face_inputs: Annotated[
        Path | None, typer.Option(help="ConsistentID face_inputs.safetensors of an earlier run (skips face analysis).")
    ] = None,
    method: MethodName = "consistentid",
    n: Annotated[
        int,
        typer.Option(
            "--n",
            min=1,
            help="Images per prompt. Every prompt uses seeds S, S+1, ..., so one seed's images compare across prompts "
            "(generate-batch instead gives every image of a batch its own seed).",
        ),
    ] = 1,
    seed: Annotated[int, typer.Option(help="First seed.")] = 0,
    steps: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Denoising steps [50, the ConsistentID release demos' setting for single portraits "
            "(generate-batch defaults to 30 for many images); 4 with --accelerator].",
        ),
    ] = None,
    guidance: Guidance = None,
    merge_fraction: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="ConsistentID: share of the steps on the plain prompt before the facial one [0.6].",
        ),
    ] = None,
    merge_step: Annotated[
        int | None,
        typer.Option(help="ConsistentID: steps 0..merge-step use the plain prompt (overrides --merge-fraction)."),
    ] = None,
    id_scale: Annotated[
        float | None, typer.Option(help="ConsistentID: strength of the ID attention branch (0 = off) [1.0].")
    ] = None,
    negative: Annotated[str, typer.Option(help="Negative prompt.")] = registry.DEFAULT_NEGATIVE_PROMPT,
    height: Annotated[
        int | None, typer.Option(help="Image height in pixels, multiple of 8 (default: the base's; not instantid).")
    ] = None,
    width: Annotated[int | None, typer.Option(help="Image width in pixels, multiple of 8 (as --height).")] = None,
    base: Base = None,
    adapter: Adapter = None,
    image_encoder: Annotated[
        str | None, typer.Option(help="CLIP vision tower (ConsistentID, FaceID-Plus; default: the method's).")
    ] = None,
    vae: Annotated[str | None, typer.Option(help="External VAE (default: sd-vae-ft-mse for the noVAE base).")] = None,
    face_backend: FaceBackend = None,
    parser: Annotated[
        str | None, typer.Option(help="ConsistentID face parser: bisenet or landmarks [bisenet].")
    ] = None,
    parser_weights: Annotated[
        str | None, typer.Option(help="BiSeNet face_parsing.pth (default: from the ConsistentID hub repo).")
    ] = None,
    init_image: InitImage = None,
    mask: Mask = None,
    strength: Strength = None,
    control_image: ControlImage = None,
    controlnet: ControlNet = None,
    set_: MethodOptions = [],  # noqa: B006 (typer reads the default, nothing mutates it)
    fuse_lora: Annotated[
        bool, typer.Option(help="ConsistentID: fold the LoRA into the base weights once (faster, same images).")
    ] = True,
    device: Device = "auto",
    dtype: Dtype = "auto",
    offload: Annotated[bool, typer.Option(help="Keep models on the CPU until they run (low GPU memory).")] = False,
    accelerator: Accelerator = None,
    accelerator_weights: AcceleratorWeights = None,
    compile: Compile = False,
    compile_mode: CompileMode = None,
    vae_tiling: Annotated[bool, typer.Option(help="Decode tile by tile and image by image (large sizes).")] = False,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("outputs/generate"),
    overwrite: Annotated[
        bool, typer.Option(help="Replace the images of an earlier run with other settings in --out.")
    ] = False,
) -> None:
    """Generate portraits of the person in --face with ConsistentID (default) or any other --method."""
    from rich.console import Console

    from idportrait.errors import UserError
    from idportrait.generate.batch import check_resumable, claim_out_dir, loader_options, prepare_references
    from idportrait.generate.checks import check_face_models, check_finite, check_image_size, check_output_folder
    from idportrait.generate.mode_options import read_mode_options
    from idportrait.imageio import load_image
    from idportrait.pipelines.accelerators import sampling_settings
    from idportrait.pipelines.speed import check_compile_with_offload, resolve_compile_mode

    given = {"adapter": adapter, "image_encoder": image_encoder, "vae": vae, "face_backend": face_backend}
    given |= {"parser": parser, "parser_weights": parser_weights, "offload": offload}
    given |= {"accelerator": accelerator, "accelerator_weights": accelerator_weights}
    given |= {"compile": resolve_compile_mode(compile_mode or compile), "vae_tiling": vae_tiling}
    given |= {"controlnet": controlnet}
    check_compile_with_offload(compile_mode or compile, offload)
    load_options = loader_options(method, given, set_, OWN_OPTIONS)
    check_output_folder(out)
    check_face_models(face_backend, parser)
    check_finite("--guidance", guidance)
    check_finite("--id-scale", id_scale)
    check_image_size("--height", height)
    check_image_size("--width", width)
    if (not face) == (face_inputs is None):
        raise UserError("pass --face PHOTO (repeatable) or --face-inputs FILE, not both")
    image_options = read_mode_options(method, init_image, mask, strength, control_image, controlnet)
    if mask == "face" and face_inputs is not None:
        raise UserError("--mask face finds the face with the face models; pass --face instead of --face-inputs")
    photos = [load_image(path) for path in face]
    steps, guidance = sampling_settings(accelerator, steps, guidance, plain=(50, registry.default_guidance(method)))
    options: dict[str, Any] = {"num_inference_steps": steps, "guidance_scale": guidance, "negative_prompt": negative}
    consistentid_only = {"merge_fraction": merge_fraction, "start_merge_step": merge_step, "id_scale": id_scale}
    sizes = {"height": height, "width": width}
    if method not in CONSISTENTID_METHODS and any(v is not None for v in consistentid_only.values()):
        raise UserError(f"--merge-fraction, --merge-step and --id-scale apply to ConsistentID, not {method}")
    if method == "instantid" and any(v is not None for v in sizes.values()):
        raise UserError("instantid takes its size from the reference photo; use --set size=[WIDTH,HEIGHT]")
    options |= {k: v for k, v in {**consistentid_only, **sizes}.items() if v is not None}
    loaded_inputs = None
    if face_inputs is not None:
        if method != "consistentid":
            raise UserError(f"--face-inputs is a ConsistentID file; use --face with {method}")
        from idportrait.pipelines.face_inputs import FaceInputs

        loaded_inputs = FaceInputs.load(face_inputs)
        load_options["face_models"] = False

    settings = {
        "method": method,
        "face": str(face_inputs) if face_inputs is not None else [str(p) for p in face],
        "base": base,
        "device": device,
        "dtype": dtype,
        "lora_fused": fuse_lora and method in CONSISTENTID_METHODS,
        **load_options,
        "prompts": prompt,
        "seeds": [seed + k for k in range(n)],
        **options,
        **image_options,
    }

    from idportrait.devices import resolve_device
    from idportrait.generate.outputs import generation_jobs, quiet_library_progress, write_generations
    from idportrait.methods import load_method
    from idportrait.processes import Processes

    resolve_device(device, dtype)  # the first import of torch: cheap checks come before it
    check_resumable(out, settings, overwrite)  # before any model loads
    quiet_library_progress()
    console = Console(stderr=True)
    with console.status(f"loading {method}"):
        loaded = load_method(method, base=base, device=device, dtype=dtype, **load_options)
        if fuse_lora and method in CONSISTENTID_METHODS:
            from idportrait.adapters.consistentid.attention import fuse_lora as fuse

            fuse(loaded.pipe.unet)
    with console.status("analysing the face"):
        prepared = loaded_inputs or prepare_references(loaded, method, face, photos)
    claim_out_dir(out, settings, [job.path for job in generation_jobs(out, prompt, settings["seeds"])], overwrite,
                  Processes())  # fmt: skip
    paths = write_generations(loaded, prepared, settings, options | image_options, out, console)
    extra = " and face_inputs.safetensors" if hasattr(prepared, "save") else ""
    console.print(f"wrote {len(paths)} images, settings.json{extra} to {out}")
    typer.echo(str(out))
