"""IP-Adapter-FaceID (and -Plus) for SD1.5: the trainable parts and the released checkpoint layout.

Trainable parts::

    FaceID:       ArcFace id [B, 512] --MLPProjModel--> ID tokens [B, 4, 768]
    FaceID-Plus:  ArcFace id [B, 512] + CLIP hidden states [B, 257, 1280] --ProjPlusModel--> [B, 4, 768]
    UNet:         LoRA (rank 128) on every attention + decoupled ID attention (to_k_ip/to_v_ip) on every
                  cross-attention, the same processors ConsistentID uses.

Released layout (``ip-adapter-faceid_sd15.bin``, ``ip-adapter-faceid-plus_sd15.bin``): a dict
``{"image_proj": ..., "ip_adapter": ...}`` where ``ip_adapter`` is the processors' ``ModuleList`` state dict
(``"{i}.to_q_lora.down.weight"`` for every processor, ``"{i}.to_k_ip.weight"`` for the odd, cross-attention
ones). We write it as one safetensors file with ``image_proj.``/``ip_adapter.`` key prefixes, which diffusers'
``load_ip_adapter`` reads directly (it turns the LoRA keys into a peft adapter ``faceid_0``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from idportrait.adapters.consistentid.image_proj import ProjPlusModel, id_projection
from idportrait.errors import CheckpointError
from idportrait.hub import read_torch_file

FACEID_VARIANTS = ("faceid", "faceid-plus")


class MLPProjModel(nn.Module):
    """IP-Adapter-FaceID projector: id [B, id_dim] -> ``norm(proj(id))`` reshaped to [B, num_tokens, cross_dim].

    ``proj`` = `id_projection` (the same MLP as `ProjPlusModel`'s); ``norm`` LayerNorm.
    """

    def __init__(self, cross_attention_dim: int = 768, id_embeddings_dim: int = 512, num_tokens: int = 4) -> None:
        super().__init__()
        self.cross_attention_dim = cross_attention_dim
        self.num_tokens = num_tokens
        self.proj = id_projection(id_embeddings_dim, cross_attention_dim, num_tokens)
        self.norm = nn.LayerNorm(cross_attention_dim)

    def forward(self, id_embeds: torch.Tensor) -> torch.Tensor:
        """id_embeds [B, id_dim] -> ID tokens [B, num_tokens, cross_dim]."""
        x = self.proj(id_embeds).reshape(-1, self.num_tokens, self.cross_attention_dim)
        return self.norm(x)


def build_image_proj(
    variant: str, cross_attention_dim: int, clip_embeddings_dim: int, id_embeddings_dim: int = 512, num_tokens: int = 4
) -> nn.Module:
    """The projector of ``variant`` ("faceid" -> `MLPProjModel`, "faceid-plus" -> `ProjPlusModel`)."""
    if variant == "faceid":
        return MLPProjModel(cross_attention_dim, id_embeddings_dim, num_tokens)
    if variant == "faceid-plus":
        heads = max(cross_attention_dim // 64, 1)
        return ProjPlusModel(
            cross_attention_dim=cross_attention_dim,
            id_embeddings_dim=id_embeddings_dim,
            clip_embeddings_dim=clip_embeddings_dim,
            num_tokens=num_tokens,
            dim_head=cross_attention_dim // heads,
            heads=heads,
        )
    raise ValueError(f"unknown IP-Adapter-FaceID variant {variant!r}; expected one of {FACEID_VARIANTS}")


def released_state_dict(image_proj: nn.Module, adapter_modules: nn.ModuleList) -> dict[str, dict[str, torch.Tensor]]:
    """``{"image_proj": ..., "ip_adapter": ...}`` exactly as the released ``.bin`` files nest them."""
    return {
        "image_proj": {k: v.detach().cpu().contiguous() for k, v in image_proj.state_dict().items()},
        "ip_adapter": {k: v.detach().cpu().contiguous() for k, v in adapter_modules.state_dict().items()},
    }


def save_faceid_adapter(
    path: str | Path, image_proj: nn.Module, adapter_modules: nn.ModuleList, metadata: dict[str, str] | None = None
) -> Path:
    """Write the released layout as one safetensors file (``image_proj.*`` / ``ip_adapter.*`` keys)."""
    from idportrait.imageio import write_safetensors

    nested = released_state_dict(image_proj, adapter_modules)
    flat = {f"{group}.{key}": value for group, sd in nested.items() for key, value in sd.items()}
    return write_safetensors(path, flat, metadata or {})


def load_faceid_adapter(path: str | Path) -> dict[str, dict[str, torch.Tensor]]:
    """Read a FaceID adapter (our safetensors or a released ``.bin``) into ``{"image_proj", "ip_adapter"}``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("file not found", path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        flat = load_file(path)
        nested: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
        for key, value in flat.items():
            group, _, name = key.partition(".")
            if group in nested:
                nested[group][name] = value
    else:
        nested = read_torch_file(path, "IP-Adapter-FaceID checkpoint")
    if not isinstance(nested, dict) or not {"image_proj", "ip_adapter"} <= set(nested):
        raise CheckpointError("not an IP-Adapter-FaceID checkpoint (needs image_proj and ip_adapter)", path)
    return nested


def faceid_variant_of(image_proj_state: dict[str, torch.Tensor]) -> str:
    """ "faceid-plus" when the projector has a perceiver resampler, else "faceid"."""
    return "faceid-plus" if "perceiver_resampler.proj_in.weight" in image_proj_state else "faceid"
