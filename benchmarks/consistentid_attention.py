"""ConsistentID attention processors vs stock diffusers attention: UNet forward ms, one table.

    python benchmarks/consistentid_attention.py [--size tiny|sd15] [--latent 64] [--batch 2] [--device cpu|cuda]

Rows: stock SDPA processors (no adapter, the floor), ConsistentID processors (LoRA + decoupled ID attention via
SDPA) with the context's keys and values projected in every forward (a new context tensor each call, as every
step did before the K/V cache) and reused from the cache (the same context tensor at every step, as the pipelines
pass it), both with the LoRA unfused and folded (`fuse_lora`), the ID branch off (scale 0), the training attention
capture armed on the localization layers, and stock non-SDPA attention (explicit softmax everywhere) for scale.
Random weights. Besides the milliseconds (noisy on a shared CPU), each row counts the aten operations of one
forward that are not views (each one a kernel launch on a GPU, where an eager SD1.5 step is launch-bound): that
count does not depend on the machine or its load.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0
from rich.console import Console
from rich.table import Table
from torch.utils._python_dispatch import TorchDispatchMode

from idportrait.adapters.consistentid.attention import (
    attach_attention_capture,
    detach_attention_capture,
    fuse_lora,
    install_consistentid_processors,
    set_id_scale,
)

SIZES = {"tiny": {"block_out_channels": (32, 64, 64, 64)}, "sd15": {}}


def time_ms(fn: Callable[[], object], repeats: int) -> float:
    """Fastest wall time of ``fn`` in milliseconds over ``repeats`` calls, after one warm-up call (the least
    disturbed by other work on a shared machine)."""
    fn()
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000)
    return min(times)


class OpCounter(TorchDispatchMode):
    """Counts the dispatched aten operations that are not views (kernels, on a GPU)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += not func.is_view
        return func(*args, **(kwargs or {}))


def count_ops(fn: Callable[[], object]) -> int:
    """Non-view aten operations of one call of ``fn`` (after a warm-up call, so caches are filled)."""
    fn()
    with OpCounter() as counter:
        fn()
    return counter.count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--latent", type=int, default=64, help="latent side (64 = 512 px)")
    parser.add_argument("--batch", type=int, default=2, help="2 = one CFG pair")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    dtype = torch.float16 if args.device == "cuda" else torch.float32
    unet = UNet2DConditionModel(cross_attention_dim=768, **SIZES[args.size]).to(args.device, dtype).eval()
    latents = torch.randn(args.batch, 4, args.latent, args.latent, device=args.device, dtype=dtype)
    ehs = torch.randn(args.batch, 81, 768, device=args.device, dtype=dtype)
    token_idx = torch.tensor([[5, 8, 11, 14, 17]] * args.batch, device=args.device)

    @torch.no_grad()
    def forward(context: torch.Tensor) -> None:
        unet(latents, 500, encoder_hidden_states=context)

    rows: list[tuple[str, float, int]] = []

    def row(name: str, fn: Callable[[], object]) -> None:
        rows.append((name, time_ms(fn, args.repeats), count_ops(fn)))

    unet.set_attn_processor(AttnProcessor2_0())
    row("stock SDPA, 77 text tokens", lambda: forward(ehs[:, :77]))
    unet.set_attn_processor(AttnProcessor())
    row("stock explicit attention, 77 tokens", lambda: forward(ehs[:, :77]))
    install_consistentid_processors(unet)
    row("ConsistentID, K/V every call", lambda: forward(ehs.clone()))
    row("ConsistentID, K/V cached", lambda: forward(ehs))
    fuse_lora(unet)
    row("ConsistentID fused, K/V every call", lambda: forward(ehs.clone()))
    row("ConsistentID fused, K/V cached", lambda: forward(ehs))
    set_id_scale(unet, 0.0)
    row("ConsistentID fused, id_scale 0", lambda: forward(ehs))
    set_id_scale(unet, 1.0)
    capture = attach_attention_capture(unet)
    capture.token_idx = token_idx

    def captured() -> None:
        forward(ehs)
        capture.pop()

    row("ConsistentID fused + attention capture", captured)
    detach_attention_capture(unet)

    table = Table(title=f"UNet forward, {args.size}, batch {args.batch}, latent {args.latent}, {args.device} {dtype}")
    table.add_column("processors")
    table.add_column("ms", justify="right")
    table.add_column("x stock SDPA", justify="right")
    table.add_column("aten ops", justify="right")
    table.add_column("ops x stock", justify="right")
    for name, ms, ops in rows:
        table.add_row(name, f"{ms:.1f}", f"{ms / rows[0][1]:.2f}", str(ops), f"{ops / rows[0][2]:.2f}")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
