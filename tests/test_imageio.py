"""Image loading: every PNG bit depth becomes the RGB a viewer shows; folders and missing files are named."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from idportrait.errors import ImageError
from idportrait.imageio import load_image


def gray_ramp() -> np.ndarray:
    """8-bit grayscale [32, 256]: every value 0..255 once per row."""
    return np.tile(np.arange(256, dtype=np.uint8), (32, 1))


def test_16_bit_grayscale_png_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "gray16.png"
    Image.fromarray(gray_ramp().astype(np.uint16) * 257).save(path)  # 16-bit grayscale PNG, full range
    assert Image.open(path).mode.startswith("I")
    loaded = np.asarray(load_image(path))
    assert loaded.shape == (32, 256, 3)
    np.testing.assert_array_equal(loaded[..., 0], gray_ramp())
    np.testing.assert_array_equal(loaded[..., 0], loaded[..., 2])


def test_32_bit_grayscale_holding_8_bit_values_is_kept(tmp_path):
    path = tmp_path / "gray32.tif"
    Image.fromarray(gray_ramp().astype(np.int32)).save(path)
    assert Image.open(path).mode == "I"
    np.testing.assert_array_equal(np.asarray(load_image(path))[..., 1], gray_ramp())


def test_folder_and_missing_file_are_named(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(ImageError, match=r"photos: is a folder, not an image file"):
        load_image(tmp_path / "photos")
    with pytest.raises(ImageError, match=r"missing\.jpg: file not found"):
        load_image(tmp_path / "missing.jpg")
