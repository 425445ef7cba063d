"""Speed and memory options for a loaded diffusers pipeline (every method's).

    speed_up(pipe, compile=True)        # UNet in channels_last and torch.compile'd (compiled on its first call)
    speed_up(pipe, vae_tiling=True)     # VAE decodes tile by tile and image by image (large sizes, small GPUs)

Both are off by default: without them the pipeline computes exactly what it did before.
"""

from __future__ import annotations

from typing import Any


def speed_up(pipe: Any, compile: bool = False, vae_tiling: bool = False) -> None:
    """Compile ``pipe.unet`` in place (``nn.Module.compile``, channels_last first) and/or tile and slice the VAE."""
    import torch

    if compile:
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.unet.compile()
    if vae_tiling:
        pipe.vae.enable_tiling()
        pipe.vae.enable_slicing()
