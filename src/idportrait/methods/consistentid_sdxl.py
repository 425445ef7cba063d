"""``consistentid-sdxl``: the ConsistentID SDXL pipeline behind the `Method` interface (same wrapper as SD1.5)."""

from __future__ import annotations

from typing import Any

from idportrait import registry
from idportrait.devices import resolve_device
from idportrait.errors import UserError
from idportrait.methods.base import SizeWH, apply_speed_options
from idportrait.methods.consistentid import ConsistentIDMethod, load_face_models


def load_consistentid_sdxl_method(
    base: str | None = None,
    adapter: str | None = None,
    image_encoder: str | None = None,
    face_backend: str = registry.FACE_BACKEND_CONSISTENTID,
    parser: str = "bisenet",
    parser_weights: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    size: SizeWH | None = None,
    accelerator: str | None = None,
    accelerator_weights: str | None = None,
    compile: bool | str = False,
    vae_tiling: bool = False,
    controlnet: str | None = None,
    **defaults: Any,
) -> ConsistentIDMethod:
    """Load an SDXL base + ``ConsistentID_SDXL-v1.bin`` + face models; ``None`` means the registry default.

    As the release: insightface detects at 512x512, BiSeNet parses at 1280x1280 (`ConsistentIDSDXLPipeline`).

    ``defaults`` become default `ConsistentIDSDXLPipeline.__call__` keywords (e.g. ``num_inference_steps``, or
    ``text_encoding="training"``: ``--set text_encoding=training``).
    ``accelerator`` / ``accelerator_weights`` / ``compile`` / ``vae_tiling``: `apply_speed_options`.
    ``controlnet``: an SDXL ControlNet (canny, openpose; a hub id or a folder) for control images.
    """
    from idportrait.hub import fetch
    from idportrait.pipelines.consistentid_sdxl import DET_SIZE, TEXT_ENCODINGS, ConsistentIDSDXLPipeline
    from idportrait.pipelines.loading import load_controlnet
    from idportrait.registry import CONSISTENTID_REPO, SDXL_BASE

    encoding = defaults.get("text_encoding", TEXT_ENCODINGS[0])
    if encoding not in TEXT_ENCODINGS:
        raise UserError(f"text_encoding {encoding!r}: use {' or '.join(TEXT_ENCODINGS)}")

    device, torch_dtype = resolve_device(device, dtype)
    base = base or SDXL_BASE
    pipe = fetch(
        "base model",
        base,
        "--base",
        lambda local: ConsistentIDSDXLPipeline.from_pretrained(base, torch_dtype=torch_dtype, local_files_only=local),
    )
    pipe.to(device)
    pipe.load_consistentid(adapter or CONSISTENTID_REPO, image_encoder=image_encoder)
    defaults = apply_speed_options(pipe, accelerator, accelerator_weights, compile, vae_tiling) | defaults
    analyzer, face_parser = load_face_models(face_backend, parser, parser_weights, device, DET_SIZE)
    return ConsistentIDMethod(
        pipe=pipe,
        face_analyzer=analyzer,
        face_parser=face_parser,
        name="consistentid-sdxl",
        size=size,
        defaults=defaults,
        controlnet=None if controlnet is None else load_controlnet(controlnet, pipe.unet, device, torch_dtype),
    )
