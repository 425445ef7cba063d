"""Per-step pieces the training objectives share: caption ids, batch collation, condition dropout."""

from __future__ import annotations

from typing import Any

import torch


def tokenize(tokenizer: Any, text: str) -> torch.Tensor:
    """Caption -> ids [77] (truncated, padded to the tokenizer's ``model_max_length``)."""
    ids = tokenizer(text, max_length=tokenizer.model_max_length, padding="max_length", truncation=True).input_ids
    return torch.tensor(ids, dtype=torch.long)


def stack_collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Dataset items -> one batch: every tensor field stacked [B, ...], the sample keys as ``batch["keys"]``."""
    batch = {k: torch.stack([it[k] for it in items]) for k in items[0] if k != "key"}
    batch["keys"] = [it["key"] for it in items]
    return batch


def sample_drops(
    n: int, device: torch.device, p_cond: float, p_text: float, p_both: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """IP-Adapter-style dropout from one uniform draw r [n] per sample: r < p_cond drops the image condition
    (face/ID), the next p_text the text, the next p_both both. Returns (drop_cond, drop_text), bool [n]."""
    r = torch.rand(n, device=device)
    drop_cond = (r < p_cond) | ((r >= p_cond + p_text) & (r < p_cond + p_text + p_both))
    drop_text = (r >= p_cond) & (r < p_cond + p_text + p_both)
    return drop_cond, drop_text
