"""Device and dtype names as every command and loader takes them (``--device``, ``--dtype``).

Devices: ``auto`` (CUDA when torch sees a GPU, else the CPU), ``cpu``, ``cuda``, ``cuda:1`` ...
Dtypes: ``auto`` (float16 on CUDA, float32 on the CPU) or one of `DTYPE_NAMES`. torch is imported on use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from idportrait.errors import UserError

if TYPE_CHECKING:
    import torch

DTYPE_NAMES = {
    "float32": "float32",
    "fp32": "float32",
    "float16": "float16",
    "fp16": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}
"""Accepted dtype name -> torch dtype attribute."""


def pick_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; any other name unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(device: str = "auto", dtype: str = "auto") -> tuple[str, torch.dtype]:
    """(device, torch dtype) for ``--device`` / ``--dtype``; `UserError` for an unknown dtype or float16 on CPU."""
    import torch

    device = pick_device(device)
    if dtype == "auto":
        return device, torch.float16 if device.startswith("cuda") else torch.float32
    if dtype not in DTYPE_NAMES:
        raise UserError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPE_NAMES)}")
    torch_dtype = getattr(torch, DTYPE_NAMES[dtype])
    if device == "cpu" and torch_dtype == torch.float16:
        raise UserError("float16 needs a GPU; use float32 or bfloat16 on CPU")
    return device, torch_dtype
