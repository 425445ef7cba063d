"""The photos of the repainting tests (generate's --init-image/--mask and the web demo's repaint)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data


def write_repaint_photos(folder: Path) -> Path:
    """``folder`` with astronaut.png (the reference, 512x512), scene.png (the astronaut resized to 384x512) and
    mask.png (384x512, white on rows 40-240 and columns 80-280, over the scene's face)."""
    Image.fromarray(data.astronaut()).save(folder / "astronaut.png")
    Image.fromarray(data.astronaut()).resize((384, 512)).save(folder / "scene.png")
    mask = np.zeros((512, 384), np.uint8)
    mask[40:240, 80:280] = 255
    Image.fromarray(mask).save(folder / "mask.png")
    return folder
