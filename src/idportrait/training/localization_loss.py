"""Facial attention localization loss (FastComposer balanced L1), as ConsistentID trains with it.

For each flagged facial token, its attention map over the S x S latent pixels is (optionally) divided by its
spatial max; the loss is ``mean attention outside its region mask - mean attention inside``. Per layer::

    attention_probs [B*heads, Nq, Nk] --gather token_idx--> token maps [B, heads, Nq, K]
    segmaps [B, K, H, W] --bilinear, antialiased--> [B, K, S*S]          (Nq = S*S)
    loss[b, h, k] = bg - fg;  masked by token_mask, summed over k, / (valid tokens + 1e-5), mean over (b, h)

Layers are averaged plainly. The training loss weight is 0.01.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

EPS = 1e-5


def balanced_l1(token_probs: torch.Tensor, masks: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """token_probs [B, heads, Nq, K], masks [B, 1, Nq, K] in [0, 1] -> bg - fg per (b, head, token) [B, heads, K]."""
    if normalize:
        token_probs = token_probs / (token_probs.max(dim=2, keepdim=True).values + EPS)
    background = 1 - masks
    bg = (token_probs * background).sum(dim=2) / (background.sum(dim=2) + EPS)
    fg = (token_probs * masks).sum(dim=2) / (masks.sum(dim=2) + EPS)
    return bg - fg


def resize_segmaps(segmaps: torch.Tensor, n_query: int) -> torch.Tensor:
    """segmaps [B, K, H, W] -> [B, K, Nq] at the latent size S = sqrt(Nq) (bilinear, antialiased)."""
    size = math.isqrt(n_query)
    if size * size != n_query:
        raise ValueError(f"localization loss needs a square latent; got {n_query} query positions")
    resized = F.interpolate(segmaps.float(), size=(size, size), mode="bilinear", antialias=True)
    return resized.flatten(2)


def token_maps_loss(
    token_probs: torch.Tensor, segmaps: torch.Tensor, token_mask: torch.Tensor, normalize: bool = True
) -> torch.Tensor:
    """Loss of one layer from maps already gathered at the token columns.

    Args:
        token_probs: attention probabilities of the K tokens, [B, heads, Nq, K] (``AttentionCapture`` maps).
        segmaps: region masks [B, K, H, W] in {0, 1}, aligned with the tokens.
        token_mask: bool [B, K], True for real (not padded) tokens.
    Returns:
        scalar tensor (float32).
    """
    b, _, n_query, k = token_probs.shape
    masks = resize_segmaps(segmaps, n_query).transpose(1, 2).unsqueeze(1)  # [B, 1, Nq, K]
    loss = balanced_l1(token_probs.float(), masks, normalize)
    valid = token_mask.to(loss.dtype).view(b, 1, k)
    per_head = (loss * valid).sum(dim=2) / (valid.sum(dim=2) + EPS)
    return per_head.mean()


def localization_loss_one_layer(
    attention_probs: torch.Tensor,
    segmaps: torch.Tensor,
    token_idx: torch.Tensor,
    token_mask: torch.Tensor,
    normalize: bool = True,
) -> torch.Tensor:
    """attention_probs [B*heads, Nq, Nk] (batch-major rows), segmaps [B, K, H, W], token_idx int [B, K] -> scalar."""
    b, k = token_idx.shape
    bxh, n_query, n_keys = attention_probs.shape
    probs = attention_probs.view(b, bxh // b, n_query, n_keys)
    idx = token_idx.long().view(b, 1, 1, k).expand(b, bxh // b, n_query, k)
    return token_maps_loss(probs.gather(3, idx), segmaps, token_mask, normalize)


def localization_loss(
    attention_probs: dict[str, torch.Tensor],
    segmaps: torch.Tensor,
    token_idx: torch.Tensor,
    token_mask: torch.Tensor,
    normalize: bool = True,
) -> torch.Tensor:
    """Plain mean over layers of :func:`localization_loss_one_layer` (``{layer name: [B*heads, Nq, Nk]}``)."""
    losses = [
        localization_loss_one_layer(p, segmaps, token_idx, token_mask, normalize) for p in attention_probs.values()
    ]
    return torch.stack(losses).mean()


def localization_loss_from_token_maps(
    maps: dict[str, torch.Tensor], segmaps: torch.Tensor, token_mask: torch.Tensor, normalize: bool = True
) -> torch.Tensor:
    """Plain mean over layers of :func:`token_maps_loss` (``{layer name: [B, heads, Nq, K]}``, e.g. captured)."""
    if not maps:
        raise ValueError("no attention maps captured; attach an AttentionCapture and set its token_idx")
    return torch.stack([token_maps_loss(m, segmaps, token_mask, normalize) for m in maps.values()]).mean()
