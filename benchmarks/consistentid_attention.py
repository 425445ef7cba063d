"""ConsistentID attention processors vs stock diffusers attention: UNet forward ms, one table.

    python benchmarks/consistentid_attention.py [--size tiny|sd15] [--latent 64] [--batch 2] [--device cpu|cuda]

Rows: stock SDPA processors (no adapter, the floor), ConsistentID processors (LoRA + decoupled ID attention via
SDPA) with the context's keys and values projected in every forward (a new context tensor each call, as every
step did before the K/V cache) and reused from the cache (the same context tensor at every step, as the pipelines
pass it), both with the LoRA unfused and folded (`fuse_lora`), the ID branch off (scale 0), the training attention
capture armed on the localization layers, and stock non-SDPA attention (explicit softmax everywhere) for scale.
Random weights.
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

    rows: list[tuple[str, float]] = []
    unet.set_attn_processor(AttnProcessor2_0())
    rows.append(("stock SDPA, 77 text tokens", time_ms(lambda: forward(ehs[:, :77]), args.repeats)))
    unet.set_attn_processor(AttnProcessor())
    rows.append(("stock explicit attention, 77 tokens", time_ms(lambda: forward(ehs[:, :77]), args.repeats)))
    install_consistentid_processors(unet)
    rows.append(("ConsistentID, K/V every call", time_ms(lambda: forward(ehs.clone()), args.repeats)))
    rows.append(("ConsistentID, K/V cached", time_ms(lambda: forward(ehs), args.repeats)))
    fuse_lora(unet)
    rows.append(("ConsistentID fused, K/V every call", time_ms(lambda: forward(ehs.clone()), args.repeats)))
    rows.append(("ConsistentID fused, K/V cached", time_ms(lambda: forward(ehs), args.repeats)))
    set_id_scale(unet, 0.0)
    rows.append(("ConsistentID, id_scale 0", time_ms(lambda: forward(ehs), args.repeats)))
    set_id_scale(unet, 1.0)
    capture = attach_attention_capture(unet)
    capture.token_idx = token_idx

    def captured() -> None:
        forward(ehs)
        capture.pop()

    rows.append(("ConsistentID + attention capture", time_ms(captured, args.repeats)))
    detach_attention_capture(unet)

    table = Table(title=f"UNet forward, {args.size}, batch {args.batch}, latent {args.latent}, {args.device} {dtype}")
    table.add_column("processors")
    table.add_column("ms", justify="right")
    table.add_column("x stock SDPA", justify="right")
    for name, ms in rows:
        table.add_row(name, f"{ms:.1f}", f"{ms / rows[0][1]:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
