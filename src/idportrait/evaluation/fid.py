"""Fréchet distance between the generated and the reference image sets (torchmetrics' implementation).

Convention for ``FID`` (the standard, comparable with the papers): images are quantised to uint8 (the
PNGs as written), fed at native size to the TF-ported Inception-v3 ``pool3`` features (2048-d, weights
``pt_inception-2015-12-05``) through torchmetrics, which resizes to 299x299 with TF-1.x-style bilinear
interpolation (``antialias=False``, torch-fidelity's and the TTUR code's convention) and scales to
[-1, 1]. That path needs ``torch-fidelity`` (which pulls torchvision) and downloads its weights on first
use, so it is imported only when asked for.

``FD_DINO`` is the same distance in the DINO ViT-S/16 CLS feature space (no Inception, no extra
install); it is not comparable with published FIDs and is reported under its own name.

Both are biased for small sets: ConsistentID's 312.4 comes from a few hundred images, so only numbers
computed on the same number of images are comparable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from idportrait.errors import UserError

INCEPTION_FEATURES = 2048


def uint8_batch(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> uint8 [1, 3, H, W]."""
    return torch.from_numpy(np.array(image.convert("RGB"), dtype=np.uint8)).permute(2, 0, 1).unsqueeze(0)


class DinoFeatures(nn.Module):
    """uint8 images [B, 3, H, W] -> raw (unnormalised) DINO CLS features float32 [B, D], for ``FD_DINO``."""

    def __init__(self, dino) -> None:  # a `idportrait.evaluation.dino.DinoEmbedder`
        super().__init__()
        self.dino = dino
        self.num_features = int(dino.model.config.hidden_size)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        pil = [Image.fromarray(im.permute(1, 2, 0).cpu().numpy()) for im in images]
        pixels = self.dino.processor(images=pil, return_tensors="pt")["pixel_values"]
        return self.dino.model(pixel_values=pixels.to(self.dino.device)).last_hidden_state[:, 0].float().cpu()


def inception_extractor() -> int:
    """The standard FID feature choice for torchmetrics (2048-d pool3); checks torch-fidelity is installed."""
    import importlib.util

    if importlib.util.find_spec("torch_fidelity") is None:
        raise UserError(
            "the standard FID needs torch-fidelity (pip install torch-fidelity; it pulls torchvision). "
            "Use fid_features = 'dino' for the Fréchet distance in DINO space, or fid_features = 'none'."
        )
    return INCEPTION_FEATURES


def frechet_distance(
    real: Sequence[Image.Image], fake: Sequence[Image.Image], feature: int | nn.Module = INCEPTION_FEATURES
) -> float:
    """Fréchet distance between the feature Gaussians of ``real`` and ``fake`` (each at least 2 images).

    ``feature``: 2048 for the standard Inception FID, or a module mapping uint8 [B, 3, H, W] to [B, D].
    Images are fed one at a time, so sizes may differ.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    if len(real) < 2 or len(fake) < 2:
        raise UserError(f"a Fréchet distance needs at least 2 images per set (got {len(real)} and {len(fake)})")
    metric = FrechetInceptionDistance(feature=feature, normalize=False, antialias=False)
    for image in real:
        metric.update(uint8_batch(image), real=True)
    for image in fake:
        metric.update(uint8_batch(image), real=False)
    return float(metric.compute())
