"""Cross-attention maps of ConsistentID's facial class tokens, for the web demo's attention view.

During one generation the UNet's ConsistentID cross-attention layers (down_blocks.1/2, mid, up_blocks.1/2)
record the attention probabilities of each flagged class token (face, ears, eyes, nose, mouth); the last
denoising step's maps are kept. Per token: conditional half of the CFG batch, mean over heads, each layer
resized to the image and averaged over layers, normalised to [0, 1] -> a heat map over the portrait.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def supports_attention(method: Any) -> bool:
    """True for methods whose pipeline carries ConsistentID attention processors."""
    from idportrait.adapters.consistentid.attention import ConsistentIPAttnProcessor

    unet = getattr(getattr(method, "pipe", None), "unet", None)
    return unet is not None and any(isinstance(p, ConsistentIPAttnProcessor) for p in unet.attn_processors.values())


def generate_with_attention(
    method: Any, prepared: Any, prompt: str, seed: int, **options: Any
) -> tuple[Image.Image, list[tuple[str, np.ndarray]]]:
    """One image and its (token word, heat map float [H, W] in [0, 1]) per facial class token; ``options`` go to
    ``method.generate``."""
    from idportrait.adapters.consistentid.attention import attach_attention_capture, detach_attention_capture

    pipe = method.pipe
    facial = pipe.facial_prompts([prompt], prepared)[0]  # the base's caption and joiner (SD1.5 or SDXL)
    positions = facial.class_token_positions
    words = [pipe.tokenizer.decode([facial.input_ids[p]]).strip() for p in positions]
    capture = attach_attention_capture(pipe.unet)
    try:
        capture.token_idx = torch.tensor([positions])
        image = method.generate(prepared, [prompt], [seed], **options)[0]
        maps = capture.pop()
    finally:
        detach_attention_capture(pipe.unet)
    height, width = image.height, image.width
    total = torch.zeros(len(positions), height, width)
    for layer_map in maps.values():
        probs = layer_map[-1].float().mean(0)  # conditional sample, mean over heads: [Nq, K]
        rows = round((probs.shape[0] * height / width) ** 0.5)  # latent grid has the image's aspect
        grid = probs.T.reshape(len(positions), 1, rows, probs.shape[0] // rows)
        total += F.interpolate(grid, size=(height, width), mode="bilinear", align_corners=False)[:, 0].cpu()
    heat = total / total.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
    return image, list(zip(words, heat.numpy(), strict=True))


def heatmap_strip(image: Image.Image, heats: list[tuple[str, np.ndarray]]) -> Image.Image:
    """The portrait tinted red where each token attends, one panel per token, side by side."""
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    panels = []
    for _, heat in heats:
        red = np.zeros_like(base)
        red[..., 0] = 255.0
        alpha = 0.65 * heat[..., None]
        panels.append((1 - alpha) * base * 0.6 + alpha * red)
    return Image.fromarray(np.concatenate(panels or [base], axis=1).clip(0, 255).astype(np.uint8))
