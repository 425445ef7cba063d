"""CLIP-T (prompt vs image) and CLIP-I (generated vs reference) with one CLIP model.

Convention (FastComposer / PhotoMaker / ConsistentID, inherited from Textual Inversion's evaluator):
L2-normalised projected CLIP embeddings, cosine similarity, averaged over images, reported x100.
The model is `idportrait.registry.CLIP_EVAL` (OpenAI ViT-B/32), the one those evaluators load;
images go through the model's own processor (shortest side 224 bicubic, centre crop 224, OpenAI
mean/std); prompts are truncated to CLIP's 77 tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizer


@dataclass
class ClipEmbedder:
    """A CLIP model with its tokenizer and image processor; embeddings are L2-normalised."""

    model: CLIPModel
    tokenizer: CLIPTokenizer
    processor: CLIPImageProcessor
    device: torch.device

    @torch.no_grad()
    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """RGB images -> float32 [N, D] unit vectors (D = projection dim, 512 for ViT-B/32)."""
        pixels = self.processor(images=list(images), return_tensors="pt")["pixel_values"]
        features = self.model.get_image_features(pixel_values=pixels.to(self.device, self.model.dtype))
        return _normalise(features.pooler_output)

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Prompts -> float32 [N, D] unit vectors (truncated to 77 tokens)."""
        tokens = self.tokenizer(list(texts), padding=True, truncation=True, max_length=77, return_tensors="pt")
        features = self.model.get_text_features(**tokens.to(self.device))
        return _normalise(features.pooler_output)


def load_clip(name_or_path: str | Path, device: str | torch.device = "cpu") -> ClipEmbedder:
    """Load a CLIP model, tokenizer and image processor with transformers' ``from_pretrained``."""
    from idportrait.hub import fetch

    name = str(name_or_path)
    model, tokenizer, processor = fetch(
        "CLIP model",
        name,
        "clip =",
        lambda local: tuple(
            cls.from_pretrained(name, local_files_only=local) for cls in (CLIPModel, CLIPTokenizer, CLIPImageProcessor)
        ),
    )
    model = model.to(device).eval()
    return ClipEmbedder(model=model, tokenizer=tokenizer, processor=processor, device=torch.device(device))


def clip_t(embedder: ClipEmbedder, images: Sequence[Image.Image], prompts: Sequence[str]) -> np.ndarray:
    """Per-image CLIP-T x100: cosine(image_i, prompt_i), float64 [N]."""
    return 100.0 * np.sum(embedder.embed_images(images) * embedder.embed_texts(prompts), axis=1, dtype=np.float64)


def clip_i(embedder: ClipEmbedder, generated: Sequence[Image.Image], references: Sequence[Image.Image]) -> np.ndarray:
    """Per-image CLIP-I x100: cosine(generated_i, reference_i), float64 [N]."""
    gen, ref = embedder.embed_images(generated), embedder.embed_images(references)
    return 100.0 * np.sum(gen * ref, axis=1, dtype=np.float64)


def _normalise(features: torch.Tensor) -> np.ndarray:
    features = features.float()
    return (features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)).cpu().numpy()
