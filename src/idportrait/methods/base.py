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


class Method(Protocol):
    """An identity-conditioned generator: ``prepare`` once per reference, ``generate`` many times."""

    name: str

    def prepare(self, reference: Image.Image) -> Any:
        """Per-identity inputs of one reference photo (cached: the same photo is analysed once)."""
        ...

    def generate(self, prepared: Any, prompts: list[str], seeds: list[int], **options: Any) -> list[Image.Image]:
        """One image per (prompt, seed), prompt-major: ``[p0 s0, p0 s1, ..., p1 s0, ...]``."""
        ...


def image_key(image: Image.Image) -> str:
    """Content hash of a PIL image (size, mode and pixels), used to cache per-identity work."""
    digest = hashlib.sha1(f"{image.size}{image.mode}".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def seed_generators(prompts: list[str], seeds: list[int]) -> list[torch.Generator]:
    """One CPU generator per (prompt, seed) image, prompt-major (CPU so results match across devices)."""
    return [torch.Generator("cpu").manual_seed(int(s)) for _ in prompts for s in seeds]
