"""Perceiver resampler shared by ConsistentID's ID projector and FacialEncoder.

A set of latent queries attends to image features (plus themselves) and is refined by a feed-forward
block, layer by layer. No biases inside the blocks; q and k are each scaled by ``dim_head**-0.25`` and
the softmax runs in float32.
"""

from __future__ import annotations

import torch
from torch import nn


def feed_forward(dim: int, mult: int = 4) -> nn.Sequential:
    """LayerNorm -> Linear(dim, dim*mult) -> exact GELU -> Linear(dim*mult, dim); keys ``0``, ``1``, ``3``."""
    inner = dim * mult
    return nn.Sequential(
        nn.LayerNorm(dim),
        nn.Linear(dim, inner, bias=False),
        nn.GELU(),
        nn.Linear(inner, dim, bias=False),
    )


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[B, N, heads*d] -> [B, heads, N, d]."""
    b, n, _ = x.shape
    return x.view(b, n, heads, -1).transpose(1, 2)


class PerceiverAttention(nn.Module):
    """Latents attend to ``concat(features, latents)``.

    Keys: ``norm1`` (features), ``norm2`` (latents), ``to_q``, ``to_kv`` (k then v), ``to_out``.
    """

    def __init__(self, dim: int, dim_head: int = 64, heads: int = 8) -> None:
        super().__init__()
        self.dim_head = dim_head
        self.heads = heads
        inner = dim_head * heads
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, x: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """x: features [B, N, dim]; latents [B, L, dim] -> [B, L, dim] (no residual)."""
        x = self.norm1(x)
        latents = self.norm2(latents)
        b, n_latents, _ = latents.shape

        q = _split_heads(self.to_q(latents), self.heads)
        k, v = self.to_kv(torch.cat([x, latents], dim=1)).chunk(2, dim=-1)
        k, v = _split_heads(k, self.heads), _split_heads(v, self.heads)

        s = self.dim_head**-0.25
        weight = (q * s) @ (k * s).transpose(-2, -1)
        weight = torch.softmax(weight.float(), dim=-1).to(weight.dtype)
        out = (weight @ v).transpose(1, 2).reshape(b, n_latents, -1)
        return self.to_out(out)


class PerceiverResampler(nn.Module):
    """``proj_in`` -> ``depth`` x (attention + FF, both residual) -> ``proj_out`` -> ``norm_out``.

    With ``num_latents > 0`` the module owns learned starting latents ``latents`` [1, num_latents, dim]
    (FacialEncoder's ``visual_projection``); otherwise the caller passes them (ID projector).
    """

    def __init__(
        self,
        dim: int = 768,
        depth: int = 4,
        dim_head: int = 64,
        heads: int = 12,
        embedding_dim: int = 1280,
        output_dim: int = 768,
        ff_mult: int = 4,
        num_latents: int = 0,
    ) -> None:
        super().__init__()
        if num_latents > 0:
            self.latents = nn.Parameter(torch.randn(1, num_latents, dim) / dim**0.5)
        self.proj_in = nn.Linear(embedding_dim, dim)
        self.proj_out = nn.Linear(dim, output_dim)
        self.norm_out = nn.LayerNorm(output_dim)
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(dim, dim_head, heads), feed_forward(dim, ff_mult)]) for _ in range(depth)
        )

    def forward(self, x: torch.Tensor, latents: torch.Tensor | None = None) -> torch.Tensor:
        """x: image features [B, N, embedding_dim]; latents [B, L, dim] or None -> [B, L, output_dim]."""
        if latents is None:
            latents = self.latents.expand(x.shape[0], -1, -1)
        x = self.proj_in(x)
        for attn, ff in self.layers:
            latents = attn(x, latents) + latents
            latents = ff(latents) + latents
        return self.norm_out(self.proj_out(latents))
