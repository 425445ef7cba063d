"""Input checks shared by the face backends: one RGB uint8 array, with the decompression-bomb limit."""

from __future__ import annotations

import numpy as np
from PIL import Image

from idportrait.errors import ImageError
from idportrait.imageio import check_pixels


def as_rgb_array(image: Image.Image | np.ndarray, name: str = "<image>") -> np.ndarray:
    """PIL image or uint8 array [H, W, 3] (RGB) -> contiguous uint8 [H, W, 3] RGB.

    Grayscale PIL images are converted; arrays must already be RGB uint8. Raises `ImageError` for
    empty images and for images over `idportrait.imageio.MAX_IMAGE_PIXELS`.
    """
    if isinstance(image, Image.Image):
        _check_size(image.width, image.height, name)
        array = np.asarray(image.convert("RGB"))
    else:
        array = np.asarray(image)
        if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
            raise ImageError(f"expected an RGB uint8 array [H, W, 3], got {array.dtype} {list(array.shape)}", name)
        _check_size(array.shape[1], array.shape[0], name)
    return np.ascontiguousarray(array)


def _check_size(width: int, height: int, name: str) -> None:
    if width == 0 or height == 0:
        raise ImageError(f"empty image ({width}x{height})", name)
    check_pixels(width, height, name)
