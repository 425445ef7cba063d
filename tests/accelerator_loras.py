"""Accelerator LoRAs synthesised for a tiny UNet in the released files' key layouts.

LCM-LoRA and Hyper-SD ship kohya files (``lora_unet_<module with _>.lora_down.weight`` / ``.lora_up.weight`` /
``.alpha``, attention, feed-forward, proj_in/out and resnet layers); TCD ships a diffusers file
(``unet.<module>.lora_A.weight`` / ``.lora_B.weight``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

LAYOUTS = {"lcm": "kohya", "hyper-sd": "kohya", "tcd": "diffusers"}
TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2")
TARGETS += ("conv1", "conv2", "time_emb_proj")


def synthesise_lora(unet: torch.nn.Module, layout: str, rank: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random rank-``rank`` LoRA weights for every targeted Linear/Conv2d of ``unet``, keys in ``layout``."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, module in unet.named_modules():
        if not name.endswith(TARGETS) or not isinstance(module, torch.nn.Linear | torch.nn.Conv2d):
            continue
        if isinstance(module, torch.nn.Linear):
            down = torch.randn(rank, module.in_features, generator=g) / module.in_features**0.5
            up = torch.randn(module.out_features, rank, generator=g) / rank**0.5
        else:
            k = module.kernel_size
            down = torch.randn(rank, module.in_channels, *k, generator=g) / (module.in_channels * k[0] * k[1]) ** 0.5
            up = torch.randn(module.out_channels, rank, 1, 1, generator=g) / rank**0.5
        if layout == "kohya":
            key = "lora_unet_" + name.replace(".", "_")
            state |= {f"{key}.lora_down.weight": down, f"{key}.lora_up.weight": up, f"{key}.alpha": torch.tensor(rank)}
        else:
            state |= {f"unet.{name}.lora_A.weight": down, f"unet.{name}.lora_B.weight": up}
    return state


def write_accelerator_lora(unet: torch.nn.Module, name: str, path: Path) -> Path:
    """Write ``name``'s synthesised LoRA for ``unet`` to ``path`` (safetensors) and return it."""
    save_file({k: v.contiguous() for k, v in synthesise_lora(unet, LAYOUTS[name]).items()}, str(path))
    return path
