"""Fréchet distance between the generated and the reference image sets (torchmetrics' formula, in plain torch).

Convention for ``FID`` (the standard, comparable with the papers): images are quantised to uint8 (the
PNGs as written) and fed at native size to the TF Inception-v3 ``pool3`` features (2048-d, weights
``pt_inception-2015-12-05``; `idportrait.evaluation.inception`), which resizes them to 299x299 with
TF-1.x bilinear interpolation (no antialiasing; torch-fidelity's and the TTUR code's convention) and
scales them to [-1, 1]. Plain torch: no torchvision, no torch-fidelity.

``FD_DINO`` is the same distance in the DINO ViT-S/16 CLS feature space; it is not comparable with
published FIDs and is reported under its own name.

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


def frechet_distance(real: Sequence[Image.Image], fake: Sequence[Image.Image], feature: nn.Module) -> float:
    """Fréchet distance between the feature Gaussians of ``real`` and ``fake`` (each at least 2 images).

    ``feature`` maps uint8 [B, 3, H, W] to float [B, D] (`FIDInceptionV3` for the standard FID). Images are fed
    one at a time, so sizes may differ. ``|mu_r - mu_f|^2 + tr(S_r) + tr(S_f) - 2 tr((S_r S_f)^(1/2))`` in
    float64, with unbiased covariances and the trace of the square root as the sum of the square roots of the
    eigenvalues of ``S_r S_f`` (torchmetrics' formula).
    """
    if len(real) < 2 or len(fake) < 2:
        raise UserError(f"a Fréchet distance needs at least 2 images per set (got {len(real)} and {len(fake)})")
    mu_r, cov_r = _gaussian(real, feature)
    mu_f, cov_f = _gaussian(fake, feature)
    root_trace = torch.linalg.eigvals(cov_r @ cov_f).sqrt().real.sum()
    return float((mu_r - mu_f).square().sum() + cov_r.trace() + cov_f.trace() - 2 * root_trace)


def _gaussian(images: Sequence[Image.Image], feature: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        x = torch.cat([feature(uint8_batch(image)).double().cpu() for image in images])
    mean = x.mean(dim=0)
    centred = x - mean
    return mean, centred.T @ centred / (len(x) - 1)
