"""``consistentid-sdxl``: the ConsistentID SDXL pipeline behind the `Method` interface (same wrapper as SD1.5)."""

from __future__ import annotations

from typing import Any

from idportrait import registry
from idportrait.devices import resolve_device
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
    **defaults: Any,
) -> ConsistentIDMethod:
    """Load an SDXL base + ``ConsistentID_SDXL-v1.bin`` + face models; ``None`` means the registry default.

    ``defaults`` become default `ConsistentIDSDXLPipeline.__call__` keywords (e.g. ``num_inference_steps``).
    ``accelerator`` / ``accelerator_weights`` / ``compile`` / ``vae_tiling``: `apply_speed_options`.
    """
    from idportrait.hub import fetch
    from idportrait.pipelines.consistentid_sdxl import ConsistentIDSDXLPipeline
    from idportrait.registry import CONSISTENTID_REPO, SDXL_BASE

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
    analyzer, face_parser = load_face_models(face_backend, parser, parser_weights, device)
    return ConsistentIDMethod(
        pipe=pipe,
        face_analyzer=analyzer,
        face_parser=face_parser,
        name="consistentid-sdxl",
        size=size,
        defaults=defaults,
    )
