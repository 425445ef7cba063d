"""DINO similarity: cosine between self-supervised ViT-S/16 embeddings of generated and reference images.

Convention (DreamBooth's DINO metric, used by PhotoMaker and ConsistentID): the CLS token of the last
layer (after the final layer norm) of `idportrait.registry.DINO_VIT_S16`, L2-normalised, cosine,
reported x100. Images go through the model repo's own image processor (``facebook/dino-vits16``:
resize to 224x224 bilinear, ImageNet mean/std).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import ViTImageProcessor, ViTModel


@dataclass
class DinoEmbedder:
    """A DINO ViT with its image processor; embeddings are L2-normalised CLS tokens."""

    model: ViTModel
    processor: ViTImageProcessor
    device: torch.device

    @torch.no_grad()
    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """RGB images -> float32 [N, D] unit vectors (D = 384 for ViT-S/16)."""
        pixels = self.processor(images=[im.convert("RGB") for im in images], return_tensors="pt")["pixel_values"]
        cls = self.model(pixel_values=pixels.to(self.device, self.model.dtype)).last_hidden_state[:, 0].float()
        return (cls / cls.norm(dim=-1, keepdim=True).clamp_min(1e-12)).cpu().numpy()


def load_dino(name_or_path: str | Path, device: str | torch.device = "cpu") -> DinoEmbedder:
    """Load a DINO ViT (no pooling head) and its image processor with ``from_pretrained``."""
    from idportrait.hub import fetch

    name = str(name_or_path)
    model, processor = fetch(
        "DINO model",
        name,
        "dino =",
        lambda local: (
            ViTModel.from_pretrained(name, add_pooling_layer=False, local_files_only=local),
            ViTImageProcessor.from_pretrained(name, local_files_only=local),
        ),
    )
    model = model.to(device).eval()
    return DinoEmbedder(model=model, processor=processor, device=torch.device(device))


def dino_similarity(
    embedder: DinoEmbedder, generated: Sequence[Image.Image], references: Sequence[Image.Image]
) -> np.ndarray:
    """Per-image DINO x100: cosine(generated_i, reference_i), float64 [N]."""
    gen, ref = embedder.embed_images(generated), embedder.embed_images(references)
    return 100.0 * np.sum(gen * ref, axis=1, dtype=np.float64)
