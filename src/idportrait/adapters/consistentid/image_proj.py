"""ID projector (IP-Adapter-FaceID-Plus ``ProjPlusModel``): ArcFace + CLIP features -> ID tokens."""

from __future__ import annotations

import torch
from torch import nn

from idportrait.adapters.consistentid.resampler import PerceiverResampler


def id_projection(id_embeddings_dim: int, cross_attention_dim: int, num_tokens: int) -> nn.Sequential:
    """The FaceID ``proj`` MLP: Linear(id_dim -> 2 id_dim), GELU, Linear(2 id_dim -> cross_dim * num_tokens)."""
    return nn.Sequential(
        nn.Linear(id_embeddings_dim, id_embeddings_dim * 2),
        nn.GELU(),
        nn.Linear(id_embeddings_dim * 2, cross_attention_dim * num_tokens),
    )


class ProjPlusModel(nn.Module):
    """Face embedding [B, id_dim] and whole-photo CLIP hidden states [B, 257, clip_dim] -> [B, num_tokens, cross_dim].

    SD1.5: ``cross_attention_dim=768`` (12 heads), shortcut off. SDXL: 2048 (32 heads), shortcut on.
    """

    def __init__(
        self,
        cross_attention_dim: int = 768,
        id_embeddings_dim: int = 512,
        clip_embeddings_dim: int = 1280,
        num_tokens: int = 4,
        depth: int = 4,
        dim_head: int = 64,
        heads: int | None = None,
        ff_mult: int = 4,
    ) -> None:
        super().__init__()
        self.cross_attention_dim = cross_attention_dim
        self.num_tokens = num_tokens
        self.proj = id_projection(id_embeddings_dim, cross_attention_dim, num_tokens)
        self.norm = nn.LayerNorm(cross_attention_dim)
        self.perceiver_resampler = PerceiverResampler(
            dim=cross_attention_dim,
            depth=depth,
            dim_head=dim_head,
            heads=heads or cross_attention_dim // dim_head,
            embedding_dim=clip_embeddings_dim,
            output_dim=cross_attention_dim,
            ff_mult=ff_mult,
        )

    def id_latents(self, id_embeds: torch.Tensor) -> torch.Tensor:
        """[B, id_dim] -> the ID tokens before the resampler, [B, num_tokens, cross_dim]."""
        x = self.proj(id_embeds).reshape(-1, self.num_tokens, self.cross_attention_dim)
        return self.norm(x)

    def forward(
        self, id_embeds: torch.Tensor, clip_embeds: torch.Tensor, shortcut: bool = False, scale: float = 1.0
    ) -> torch.Tensor:
        """id_embeds [B, id_dim], clip_embeds [B, 257, clip_dim] -> ID tokens [B, num_tokens, cross_dim]."""
        x = self.id_latents(id_embeds)
        out = self.perceiver_resampler(clip_embeds, x)
        return x + scale * out if shortcut else out
