"""The photos of the repainting tests (command line and web demo): a reference, a photo to paint it into, a mask."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data


def write_repaint_photos(folder: Path) -> Path:
    """Write into ``folder`` astronaut.png (the reference, 512x512), scene.png (the astronaut at 384x512) and
    mask.png (scene's size, white = repaint: rows 40-239, columns 80-279); returns ``folder``."""
    Image.fromarray(data.astronaut()).save(folder / "astronaut.png")
    Image.fromarray(data.astronaut()).resize((384, 512)).save(folder / "scene.png")
    mask = np.zeros((512, 384), np.uint8)
    mask[40:240, 80:280] = 255
    Image.fromarray(mask).save(folder / "mask.png")
    return folder
