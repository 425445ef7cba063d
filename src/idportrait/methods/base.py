"""The one interface every identity method offers to evaluation and the web demo.

method = load_method("consistentid", base=None, device="cuda")
ref = method.prepare(photo)                          # per identity; cached, reusable
images = method.generate(ref, prompts, seeds)        # len(prompts) * len(seeds) PIL images, prompt-major
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

import torch
from PIL import Image

from idportrait.errors import UserError

SizeWH = tuple[int, int]
"""An image size as (width, height) in pixels, PIL's order: every method's ``size`` option."""


class Method(Protocol):
    """An identity-conditioned generator: ``prepare`` once per reference, ``generate`` many times.

    ``multi_reference``: whether ``prepare`` takes a list of photos of one person (and averages them).
    """

    name: str
    multi_reference: bool

    def prepare(self, reference: Image.Image | list[Image.Image], source: str = "<image>") -> Any:
        """Per-identity inputs of the reference photo(s) (cached: the same photo is analysed once); ``source``
        names them in errors."""
        ...

    def generate(self, prepared: Any, prompts: list[str], seeds: list[int], **options: Any) -> list[Image.Image]:
        """One image per (prompt, seed), prompt-major: ``[p0 s0, p0 s1, ..., p1 s0, ...]``."""
        ...


def size_options(size: SizeWH | None) -> dict[str, int]:
    """Pipeline call keywords of a (width, height) ``size``; {} for None (the pipeline's default size)."""
    if size is None:
        return {}
    width, height = size
    return {"width": int(width), "height": int(height)}


def output_size(width: int, height: int, pixels: int, multiple: int = 64) -> SizeWH:
    """(width, height): an image's aspect ratio at about ``pixels`` pixels, both multiples of ``multiple``."""
    scale = (pixels / (width * height)) ** 0.5
    return max(multiple, round(width * scale / multiple) * multiple), max(
        multiple, round(height * scale / multiple) * multiple
    )


def image_key(image: Image.Image) -> str:
    """Content hash of a PIL image (size, mode and pixels), used to cache per-identity work."""
    digest = hashlib.sha1(f"{image.size}{image.mode}".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def seed_generators(prompts: list[str], seeds: list[int]) -> list[torch.Generator]:
    """One CPU generator per (prompt, seed) image, prompt-major (CPU so results match across devices)."""
    return [torch.Generator("cpu").manual_seed(int(s)) for _ in prompts for s in seeds]


def apply_speed_options(
    pipe: Any,
    accelerator: str | None = None,
    accelerator_weights: str | None = None,
    compile: bool | str = False,
    vae_tiling: bool = False,
) -> dict[str, Any]:
    """A loaded method pipeline's speed options; returns the call defaults they bring (empty without accelerator).

    ``accelerator``: ``lcm``, ``hyper-sd`` or ``tcd`` (`idportrait.pipelines.accelerators`; its LoRA from
    ``accelerator_weights`` or the registry), giving ``num_inference_steps`` and ``guidance_scale`` defaults.
    ``compile`` / ``vae_tiling``: `idportrait.pipelines.speed.speed_up`.
    """
    from idportrait.pipelines.accelerators import load_accelerator
    from idportrait.pipelines.speed import speed_up

    defaults: dict[str, Any] = {}
    if accelerator is not None:
        defaults = load_accelerator(pipe, accelerator, accelerator_weights)
    elif accelerator_weights is not None:
        raise UserError("--accelerator-weights needs --accelerator lcm|hyper-sd|tcd")
    speed_up(pipe, compile=compile, vae_tiling=vae_tiling)
    return defaults
