"""FacialEncoder: facial-region CLIP features -> one token per region, fused into the prompt embedding.

Data flow::

    region_embeds [B, R, 257, 1280] --visual_projection--> region_tokens [B, R, D]
    prompt_embeds [B, 77, D] + region_tokens + masks --fuse--> prompt_embeds with fused class tokens [B, 77, D]

Region tokens depend only on the reference photo, so callers may compute them once per identity with
:meth:`FacialEncoder.encode_regions` and reuse them across prompts with :meth:`FacialEncoder.fuse`.
"""

from __future__ import annotations

import torch
from torch import nn

from idportrait.adapters.consistentid.resampler import PerceiverResampler


class MLP(nn.Module):
    """LayerNorm(in) -> fc1 -> GELU -> fc2, plus the input when ``use_residual``."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int, use_residual: bool = True) -> None:
        super().__init__()
        if use_residual and in_dim != out_dim:
            raise ValueError(f"a residual MLP needs in_dim == out_dim, got {in_dim} and {out_dim}")
        self.use_residual = use_residual
        self.layernorm = nn.LayerNorm(in_dim)
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, out_dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc2(self.act(self.fc1(self.layernorm(x))))
        return out + x if self.use_residual else out


class FuseModule(nn.Module):
    """Fuses a class token t [N, D] with its region token r [N, D]: ``layer_norm(mlp2(mlp1([t, r]) + t))``."""

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.mlp1 = MLP(embed_dim * 2, embed_dim, embed_dim, use_residual=False)
        self.mlp2 = MLP(embed_dim, embed_dim, embed_dim, use_residual=True)
        self.layer_norm = nn.LayerNorm(embed_dim)

    def forward(self, tokens: torch.Tensor, region_tokens: torch.Tensor) -> torch.Tensor:
        h = self.mlp1(torch.cat([tokens, region_tokens], dim=-1)) + tokens
        return self.layer_norm(self.mlp2(h))


class FacialEncoder(nn.Module):
    """``visual_projection`` (perceiver, 1 learned latent) + ``fuse_module``.

    SD1.5: ``embed_dim=768``; SDXL: ``embed_dim=2048``.
    """

    def __init__(
        self,
        embed_dim: int = 768,
        clip_dim: int = 1280,
        latent_dim: int = 1024,
        depth: int = 8,
        dim_head: int = 64,
        heads: int = 16,
    ) -> None:
        super().__init__()
        self.visual_projection = PerceiverResampler(
            dim=latent_dim,
            depth=depth,
            dim_head=dim_head,
            heads=heads,
            embedding_dim=clip_dim,
            output_dim=embed_dim,
            num_latents=1,
        )
        self.fuse_module = FuseModule(embed_dim)

    def encode_regions(self, region_embeds: torch.Tensor) -> torch.Tensor:
        """region_embeds [B, R, 257, clip_dim] (CLIP penultimate hidden states per crop) -> [B, R, D]."""
        b, r, n, c = region_embeds.shape
        tokens = self.visual_projection(region_embeds.reshape(b * r, n, c))
        return tokens.reshape(b, r, -1)

    def fuse(
        self,
        prompt_embeds: torch.Tensor,
        region_tokens: torch.Tensor,
        class_tokens_mask: torch.Tensor,
        valid_region_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Write fused tokens at the flagged positions; returns a new [B, 77, D] tensor.

        The k-th flagged position (row-major over batch, position) is paired with the k-th valid region
        (row-major over batch, region). Unflagged positions are returned unchanged.

        Args:
            prompt_embeds: text-encoder output [B, 77, D].
            region_tokens: :meth:`encode_regions` output [B, R, D].
            class_tokens_mask: bool [B, 77], True at class-word positions.
            valid_region_mask: bool [B, R], True for regions to fuse.
        """
        class_tokens_mask = class_tokens_mask.bool()
        valid_region_mask = valid_region_mask.bool()
        n_tokens, n_regions = int(class_tokens_mask.sum()), int(valid_region_mask.sum())
        if n_tokens != n_regions:
            raise ValueError(
                f"FacialEncoder: {n_tokens} flagged class tokens but {n_regions} valid regions; they must be equal"
            )
        out = prompt_embeds.clone()
        if n_tokens == 0:
            return out
        tokens = prompt_embeds[class_tokens_mask]
        regions = region_tokens[valid_region_mask].to(prompt_embeds.dtype)
        out[class_tokens_mask] = self.fuse_module(tokens, regions).to(out.dtype)
        return out

    def forward(
        self,
        prompt_embeds: torch.Tensor,
        region_embeds: torch.Tensor,
        class_tokens_mask: torch.Tensor,
        valid_region_mask: torch.Tensor,
    ) -> torch.Tensor:
        """prompt_embeds [B, 77, D], region_embeds [B, R, 257, clip_dim], masks [B, 77], [B, R] -> [B, 77, D]."""
        region_tokens = self.encode_regions(region_embeds)
        return self.fuse(prompt_embeds, region_tokens, class_tokens_mask, valid_region_mask)
