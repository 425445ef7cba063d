"""``plain-sd``: the base model with the prompt alone (the floor every identity method must beat)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from PIL import Image

from idportrait.devices import resolve_device
from idportrait.methods.base import SizeWH, apply_speed_options, seed_generators, size_options

DEFAULTS = {"num_inference_steps": 50, "guidance_scale": 5.0}
"""Default pipeline call keywords: the ConsistentID release's, so the floor is comparable."""


@dataclass
class PlainSDMethod:
    """A `StableDiffusionPipeline`; the reference photo is ignored."""

    pipe: Any
    name: str = "plain-sd"
    size: SizeWH | None = None
    defaults: dict[str, Any] = field(default_factory=lambda: dict(DEFAULTS))
    multi_reference: ClassVar[bool] = False

    def prepare(self, reference: Image.Image, source: str = "<image>") -> None:
        """Nothing to prepare: plain SD does not look at the reference."""
        return None

    def generate(self, prepared: Any, prompts: list[str], seeds: list[int], **options: Any) -> list[Image.Image]:
        """One image per (prompt, seed); ``options`` are `StableDiffusionPipeline.__call__` keywords."""
        kwargs = {**size_options(self.size), **self.defaults, **options}
        out = self.pipe(prompts, num_images_per_prompt=len(seeds), generator=seed_generators(prompts, seeds), **kwargs)
        return out.images


def load_plain_sd_method(
    base: str | None = None,
    vae: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    offload: bool = False,
    size: SizeWH | None = None,
    accelerator: str | None = None,
    accelerator_weights: str | None = None,
    compile: bool | str = False,
    vae_tiling: bool = False,
    **defaults: Any,
) -> PlainSDMethod:
    """Load the SD1.5-family base (registry default: the ConsistentID demos' base) with the Euler scheduler.

    ``accelerator`` / ``accelerator_weights`` / ``compile`` / ``vae_tiling``: `apply_speed_options`.
    """
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    from idportrait.pipelines.loading import default_vae, load_sd15_pipeline
    from idportrait.registry import SD15_BASE

    device, torch_dtype = resolve_device(device, dtype)
    base = base or SD15_BASE
    pipe = load_sd15_pipeline(StableDiffusionPipeline, base, vae or default_vae(base), device, torch_dtype, offload)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    recipe = apply_speed_options(pipe, accelerator, accelerator_weights, compile, vae_tiling)
    return PlainSDMethod(pipe=pipe, size=size, defaults={**DEFAULTS, **recipe, **defaults})
