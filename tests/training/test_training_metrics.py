"""Attention share inside region masks (the learning experiment's measure)."""

from __future__ import annotations

import torch

from idportrait.training.metrics import attention_share_in_regions, region_area_fraction


def _masks() -> tuple[torch.Tensor, torch.Tensor]:
    masks = torch.zeros(1, 2, 8, 8)
    masks[0, 0, :4, :4] = 1  # token 0: top-left quarter
    masks[0, 1, 4:, 4:] = 1  # token 1: bottom-right quarter
    return masks, torch.tensor([[True, True]])


def test_uniform_attention_scores_the_area_fraction():
    masks, valid = _masks()
    maps = {"layer": torch.full((1, 2, 64, 2), 1 / 64)}
    share = attention_share_in_regions(maps, masks, valid)
    assert torch.allclose(share, torch.tensor([0.25]))
    assert region_area_fraction(masks, valid, 64) == 0.25


def test_attention_inside_the_region_scores_one_and_padding_is_ignored():
    masks, _ = _masks()
    probs = torch.zeros(1, 2, 64, 2)
    probs[0, :, 0, 0] = 1.0  # pixel (0, 0): inside token 0's region
    probs[0, :, 63, 1] = 0.5  # pixel (7, 7): inside token 1's region
    probs[0, :, 0, 1] = 0.5  # pixel (0, 0): outside token 1's region
    share = attention_share_in_regions({"a": probs, "b": probs}, masks, torch.tensor([[True, True]]))
    assert torch.allclose(share, torch.tensor([0.75, 0.75]))
    only_first = attention_share_in_regions({"a": probs}, masks, torch.tensor([[True, False]]))
    assert torch.allclose(only_first, torch.tensor([1.0]))
