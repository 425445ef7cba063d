"""What the localization loss is meant to change: how much of a facial token's attention lands in its region."""

from __future__ import annotations

import torch

from idportrait.training.localization_loss import resize_segmaps


def attention_share_in_regions(
    maps: dict[str, torch.Tensor], segmaps: torch.Tensor, token_mask: torch.Tensor
) -> torch.Tensor:
    """Share of each valid facial token's cross-attention mass inside its region mask, per layer.

    Args:
        maps: ``{layer: [B, heads, Nq, K]}`` attention probabilities of the K facial tokens (captured).
        segmaps: region masks [B, K, H, W] in [0, 1], token order; resized like the loss, then thresholded at 0.5.
        token_mask: bool [B, K], True for real tokens.

    Returns:
        [L] (one value per layer, in ``maps`` order): mean over valid tokens of sum(p * m) / sum(p),
        p the head-averaged map. A map spread uniformly scores the region's area fraction; 1 = all inside.
    """
    shares = []
    valid = token_mask.bool()
    for probs in maps.values():
        p = probs.float().mean(dim=1)  # [B, Nq, K]
        m = (resize_segmaps(segmaps, p.shape[1]).transpose(1, 2) > 0.5).float()  # [B, Nq, K]
        share = (p * m).sum(dim=1) / p.sum(dim=1).clamp_min(1e-12)  # [B, K]
        shares.append(share[valid].mean())
    return torch.stack(shares)


def region_area_fraction(segmaps: torch.Tensor, token_mask: torch.Tensor, n_query: int) -> float:
    """Mean area fraction of the valid regions at a map of ``n_query`` pixels (the uniform-attention share)."""
    m = (resize_segmaps(segmaps, n_query) > 0.5).float().mean(dim=-1)  # [B, K]
    return float(m[token_mask.bool()].mean())
