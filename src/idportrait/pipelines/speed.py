"""Speed and memory options for a loaded diffusers pipeline (every method's).

    speed_up(pipe, compile=True)        # UNet in channels_last and torch.compile'd (compiled on its first call)
    speed_up(pipe, vae_tiling=True)     # VAE decodes tile by tile and image by image (large sizes, small GPUs)
    fuse_peft_loras(pipe, {"accelerator": 1.0, "faceid_0": 1.0})   # LoRAs weighted and folded into the UNet

`speed_up`'s options are off by default: without them the pipeline computes exactly what it did before.
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


def fuse_peft_loras(pipe: Any, weights: dict[str, float]) -> None:
    """Weight the UNet's peft LoRA adapters (adapter name -> weight) and fold them into its base weights.

    diffusers' ``fuse_lora``: the UNet then runs its base layers alone, without the LoRA matmuls (an LCM or
    FaceID LoRA of rank 64-128 on every projection costs 20-80 % of each layer otherwise). The same weights
    again leave the UNet as it is; other weights unfuse first (``unfuse_lora``), so a changed weight is exact
    up to float rounding. Adapters not named are switched off.
    """
    fused = getattr(pipe, "_fused_lora_weights", None)
    if fused == weights:
        return
    if fused is not None:
        pipe.unfuse_lora(components=["unet"])
    pipe.set_adapters(list(weights), adapter_weights=list(weights.values()))
    pipe.fuse_lora(components=["unet"], adapter_names=list(weights))
    pipe._fused_lora_weights = dict(weights)
