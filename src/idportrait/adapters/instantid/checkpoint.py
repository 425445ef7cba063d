"""The released ``ip-adapter.bin`` of InstantID: layout and strict check.

    {"image_proj": Resampler (16 latents [1, 16, 1280], proj_in 512 -> 1280, 4 layers of 20 heads x 64,
                   proj_out 1280 -> 2048, norm_out),
     "ip_adapter": {"{i}.to_k_ip.weight", "{i}.to_v_ip.weight"} for every cross-attention processor i}

diffusers reads the Resampler as ``IPAdapterPlusImageProjection`` (face embedding [B, 1, 512] -> 16 face
tokens [B, 16, 2048]) and the ``ip_adapter`` part as its decoupled attention processors, so after the check
the dict goes to ``pipe.load_ip_adapter`` unchanged.
"""

from __future__ import annotations

from pathlib import Path

import torch

from idportrait.adapters.ipadapter_layout import check_layout_group, ip_adapter_layout
from idportrait.errors import CheckpointError
from idportrait.hub import read_torch_file

NUM_TOKENS = 16
RESAMPLER_DEPTH = 4
"""diffusers' ``IPAdapterPlusImageProjection`` always has 4 layers, as the release."""
RELEASE_RESAMPLER = {"dim": 1280, "depth": RESAMPLER_DEPTH, "heads": 20, "embedding_dim": 512, "output_dim": 2048}


def resampler_layout(
    dim: int,
    depth: int,
    heads: int,
    embedding_dim: int,
    output_dim: int,
    num_queries: int = NUM_TOKENS,
    ff_mult: int = 4,
) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the IP-Adapter ``Resampler`` (dim_head 64; attention and feed-forward without biases)."""
    inner = 64 * heads
    layout = {
        "latents": (1, num_queries, dim),
        "proj_in.weight": (dim, embedding_dim),
        "proj_in.bias": (dim,),
        "proj_out.weight": (output_dim, dim),
        "proj_out.bias": (output_dim,),
        "norm_out.weight": (output_dim,),
        "norm_out.bias": (output_dim,),
    }
    for k in range(depth):
        for norm in ("0.norm1", "0.norm2", "1.0"):
            layout |= {f"layers.{k}.{norm}.weight": (dim,), f"layers.{k}.{norm}.bias": (dim,)}
        layout |= {
            f"layers.{k}.0.to_q.weight": (inner, dim),
            f"layers.{k}.0.to_kv.weight": (2 * inner, dim),
            f"layers.{k}.0.to_out.weight": (dim, inner),
            f"layers.{k}.1.1.weight": (ff_mult * dim, dim),
            f"layers.{k}.1.3.weight": (dim, ff_mult * dim),
        }
    return layout


def check_instantid_checkpoint(state: dict, unet: torch.nn.Module, path: str | Path) -> None:
    """Raise `CheckpointError` unless ``state`` is a released-layout InstantID adapter that fits ``unet``."""
    if not isinstance(state, dict) or set(state) != {"image_proj", "ip_adapter"}:
        found = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"expected the dict keys ['image_proj', 'ip_adapter'], found {found}", path)
    proj = state["image_proj"]
    for key in ("latents", "proj_in.weight", "layers.0.0.to_q.weight"):
        if key not in proj:
            raise CheckpointError(f"image_proj is not an InstantID Resampler (no {key})", path)
    expected = resampler_layout(
        dim=proj["latents"].shape[-1],
        depth=RESAMPLER_DEPTH,
        heads=proj["layers.0.0.to_q.weight"].shape[0] // 64,
        embedding_dim=proj["proj_in.weight"].shape[1],
        output_dim=unet.config.cross_attention_dim,
        num_queries=proj["latents"].shape[1],
    )
    check_layout_group(proj, expected, "image_proj", path)
    check_layout_group(state["ip_adapter"], ip_adapter_layout(unet, None), "ip_adapter", path)


def load_instantid_checkpoint(path: str | Path) -> dict:
    """Read ``ip-adapter.bin`` (pickle, weights only) or our ``.safetensors`` (``image_proj.*``, ``ip_adapter.*``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("checkpoint not found", path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state: dict[str, dict] = {}
        for key, value in load_file(path).items():
            group, _, rest = key.partition(".")
            state.setdefault(group, {})[rest] = value
        return state
    return read_torch_file(path, "InstantID checkpoint")
