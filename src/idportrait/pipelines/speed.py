"""Speed and memory options for a loaded diffusers pipeline (every method's).

    speed_up(pipe, compile=True)        # UNet (+ ControlNet) in channels_last and torch.compile'd (on its first call)
    speed_up(pipe, compile="reduce-overhead")   # the same, replayed as CUDA graphs (one per batch and size)
    speed_up(pipe, vae_tiling=True)     # VAE decodes tile by tile and image by image (large sizes, small GPUs)
    fuse_peft_loras(pipe, {"accelerator": 1.0, "faceid_0": 1.0})   # LoRAs weighted and folded into the UNet

`speed_up`'s options are off by default: without them the pipeline computes exactly what it did before.

Compile modes (`COMPILE_MODES`, torch.compile's): ``default`` (inductor kernels), ``reduce-overhead`` (the same
kernels captured as CUDA graphs: one launch per denoiser call instead of hundreds) and ``max-autotune`` (autotuned
matmuls/convolutions, also CUDA graphs). Shapes are static (``dynamic=False``): each (batch, height, width) compiles
and captures once, on its first call. The conditioning tensors are graph inputs, so the delayed merge of
ConsistentID hands the captured graph the other context (copied into its input buffer), it does not switch graphs;
a new ID scale is a new graph (the scale is a constant inside it).
"""

from __future__ import annotations

from typing import Any

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
COMPILED_MODELS = ("unet", "controlnet")
"""The pipeline components ``compile`` compiles: the denoiser and, where there is one, its ControlNet."""


def resolve_compile_mode(compile: bool | str | None) -> str | None:
    """``--compile`` / ``--compile-mode`` value -> a mode of `COMPILE_MODES` or None (off); True means "default".

    An unknown mode is a `UserError`.
    """
    if compile is None or compile is False:
        return None
    if compile is True:
        return "default"
    if compile not in COMPILE_MODES:
        from idportrait.errors import UserError

        raise UserError(f"unknown compile mode {compile!r}; use {', '.join(COMPILE_MODES)}")
    return compile


def check_compile_with_offload(compile: bool | str | None, offload: bool) -> None:
    """`UserError` for CUDA-graph modes with ``--offload``: a captured graph keeps its weights' GPU addresses, while
    offloading moves the weights off the GPU after every call."""
    mode = resolve_compile_mode(compile)
    if offload and mode in ("reduce-overhead", "max-autotune"):
        from idportrait.errors import UserError

        raise UserError(f"--compile-mode {mode} captures CUDA graphs and cannot run with --offload; use one of them")


def speed_up(pipe: Any, compile: bool | str = False, vae_tiling: bool = False) -> None:
    """Compile ``pipe.unet`` (and ``pipe.controlnet``) in place, channels_last first, in the `resolve_compile_mode` of
    ``compile``; and/or tile and slice the VAE."""
    import torch

    mode = resolve_compile_mode(compile)
    if mode is not None:
        for name in COMPILED_MODELS:
            model = getattr(pipe, name, None)
            if model is not None:
                model.to(memory_format=torch.channels_last)
                model.compile(mode=None if mode == "default" else mode, dynamic=False)
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
