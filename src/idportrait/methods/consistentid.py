"""``consistentid``: the ConsistentID SD1.5 pipeline behind the `Method` interface."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from PIL import Image

from idportrait import registry
from idportrait.devices import resolve_device
from idportrait.errors import UserError
from idportrait.methods.base import SizeWH, apply_speed_options, image_key, seed_generators, size_options


@dataclass
class ConsistentIDMethod:
    """Wraps a loaded `ConsistentIDPipeline` with its face analyzer and parser (one reference photo)."""

    pipe: Any
    face_analyzer: Any
    face_parser: Any
    name: str = "consistentid"
    size: SizeWH | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    _prepared: dict[str, Any] = field(default_factory=dict, repr=False)
    multi_reference: ClassVar[bool] = False

    def prepare(self, reference: Image.Image, source: str = "<image>") -> Any:
        """`FaceInputs` of the reference (face embedding, parsing, CLIP features), cached by image content."""
        key = image_key(reference)
        if key not in self._prepared:
            self._prepared[key] = self.pipe.prepare_face_inputs(reference, self.face_analyzer, self.face_parser, source)
        return self._prepared[key]

    def generate(self, prepared: Any, prompts: list[str], seeds: list[int], **options: Any) -> list[Image.Image]:
        """One image per (prompt, seed); ``options`` are `ConsistentIDPipeline.__call__` keywords."""
        kwargs = {**size_options(self.size), **self.defaults, **options}
        out = self.pipe(
            prompts,
            face_inputs=prepared,
            num_images_per_prompt=len(seeds),
            generator=seed_generators(prompts, seeds),
            **kwargs,
        )
        return out.images


def load_face_models(face_backend: str, parser: str, parser_weights: str | None, device: str) -> tuple[Any, Any]:
    """(face analyzer, face parser): ``insightface:buffalo_l`` or ``dlib``; ``bisenet`` or ``landmarks``."""
    from idportrait.faces import get_face_analyzer, get_face_parser

    analyzer = get_face_analyzer(face_backend, device=device)
    if parser == "bisenet":
        from idportrait.faces.parsing import default_bisenet_weights

        return analyzer, get_face_parser("bisenet", weights=parser_weights or default_bisenet_weights(), device=device)
    return analyzer, get_face_parser(parser)


def load_consistentid_method(
    base: str | None = None,
    adapter: str | None = None,
    image_encoder: str | None = None,
    vae: str | None = None,
    face_backend: str = registry.FACE_BACKEND_CONSISTENTID,
    parser: str = "bisenet",
    parser_weights: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    offload: bool = False,
    face_models: bool = True,
    size: SizeWH | None = None,
    accelerator: str | None = None,
    accelerator_weights: str | None = None,
    compile: bool | str = False,
    vae_tiling: bool = False,
    **defaults: Any,
) -> ConsistentIDMethod:
    """Load base + ConsistentID + face models; ``None`` means the registry default (real hub ids).

    ``face_models=False`` skips the face analyzer and parser (for callers that pass saved `FaceInputs`).
    ``defaults`` become default `ConsistentIDPipeline.__call__` keywords (e.g. ``num_inference_steps``).
    ``accelerator`` / ``accelerator_weights`` / ``compile`` / ``vae_tiling``: `apply_speed_options`.
    """
    from idportrait.pipelines.consistentid_sd15 import ConsistentIDPipeline
    from idportrait.pipelines.loading import default_vae, load_sd15_pipeline
    from idportrait.registry import CONSISTENTID_REPO, SD15_BASE

    device, torch_dtype = resolve_device(device, dtype)
    base = base or SD15_BASE
    if offload and not device.startswith("cuda"):
        raise UserError(f"--offload needs a GPU (device is {device})")
    # with offload, the pipeline stays on the CPU until the adapter and its image encoder are in it
    place = "cpu" if offload else device
    pipe = load_sd15_pipeline(ConsistentIDPipeline, base, vae or default_vae(base), place, torch_dtype)
    pipe.load_consistentid(adapter or CONSISTENTID_REPO, image_encoder=image_encoder)
    defaults = apply_speed_options(pipe, accelerator, accelerator_weights, compile, vae_tiling) | defaults
    if offload:
        pipe.enable_model_cpu_offload(device=device)
    analyzer, face_parser = (
        load_face_models(face_backend, parser, parser_weights, device) if face_models else (None, None)
    )
    return ConsistentIDMethod(pipe=pipe, face_analyzer=analyzer, face_parser=face_parser, size=size, defaults=defaults)
