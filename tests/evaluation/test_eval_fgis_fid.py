from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from idportrait.errors import UserError
from idportrait.evaluation.dino import load_dino
from idportrait.evaluation.fgis import fgis, region_crops
from idportrait.evaluation.fid import DinoFeatures, frechet_distance
from idportrait.faces.parsing import extract_regions


def _face_labels(shift: int = 0, eyes: int = 4) -> np.ndarray:
    """A 512x512 label map: face skin, one eye, nose and upper lip as rectangles."""
    labels = np.zeros((512, 512), np.uint8)
    labels[150 + shift : 350, 180:330] = 1
    labels[200:220, 200 + shift : 240] = eyes
    labels[240:290, 240:270] = 10
    labels[310:325, 225:285] = 12
    return labels


def test_region_crops_follow_the_masks(astronaut):
    crops = region_crops(astronaut, extract_regions(_face_labels()))
    assert list(crops) == ["Face", "Eye", "Nose", "Lip"]
    assert crops["Nose"].size == (30 + 2 * 3, 50 + 2 * 5)  # box 30x50 + 10 % margin on each side
    assert np.asarray(crops["Eye"])[0, 0].sum() == 0  # margin pixels outside the mask are black


def test_fgis_identical_maximal_unrelated_lower(tiny_dino_dir, astronaut, noise_image):
    dino = load_dino(tiny_dino_dir)
    parsing = extract_regions(_face_labels())
    score, per_region = fgis(dino, astronaut, parsing, astronaut, parsing)
    assert score == pytest.approx(100.0, abs=1e-3)
    assert set(per_region) == {"Face", "Eye", "Nose", "Lip"}
    other, _ = fgis(dino, astronaut, parsing, noise_image.resize((512, 512)), extract_regions(_face_labels(20, eyes=5)))
    assert other < 99.9


def test_fgis_without_common_regions_is_none(tiny_dino_dir, astronaut):
    dino = load_dino(tiny_dino_dir)
    nose_only = np.zeros((512, 512), np.uint8)
    nose_only[240:290, 240:270] = 10
    eye_only = np.zeros((512, 512), np.uint8)
    eye_only[200:220, 200:240] = 5
    assert fgis(dino, astronaut, extract_regions(nose_only), astronaut, extract_regions(eye_only)) == (None, {})


class TinyFeatures(nn.Module):
    """uint8 [B, 3, H, W] -> 8 random conv features (resized to 64 px); a stand-in for Inception."""

    num_features = 8

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 5, stride=4)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.interpolate(x.float() / 255.0, size=(64, 64), mode="bilinear")
        return torch.tanh(self.conv(x)).mean(dim=(2, 3)).double()


def _crops(image, n: int, size: int = 96):
    rng = np.random.default_rng(n)
    return [image.crop((x, y, x + size, y + size)) for x, y in rng.integers(0, image.width - size, (n, 2))]


def test_fid_of_a_set_with_itself_is_zero_and_other_sets_are_farther(astronaut, noise_image):
    real = _crops(astronaut, 12)
    assert frechet_distance(real, real, TinyFeatures()) == pytest.approx(0.0, abs=1e-4)
    assert frechet_distance(real, _crops(noise_image, 12), TinyFeatures()) > 1e-3


def test_fd_dino_of_a_set_with_itself_is_zero(tiny_dino_dir, astronaut, noise_image):
    features = DinoFeatures(load_dino(tiny_dino_dir))
    real = _crops(astronaut, 40)
    assert frechet_distance(real, real, features) == pytest.approx(0.0, abs=1e-3)
    assert frechet_distance(real, _crops(noise_image, 40), features) > 0.01


def test_fid_needs_two_images_per_set(astronaut):
    with pytest.raises(UserError, match="at least 2 images"):
        frechet_distance([astronaut], [astronaut, astronaut], TinyFeatures())
