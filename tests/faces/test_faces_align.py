import warnings

import numpy as np
import pytest
from faces_photos import astronaut

from idportrait.faces.align import ARCFACE_TEMPLATE, estimate_norm, norm_crop

ASTRO_KPS = np.array([[203.2, 101.5], [246.5, 104.2], [225, 127], [201, 139], [246, 141]], np.float32)


@pytest.mark.parametrize("size", [112, 224, 128])
def test_matches_insightface_norm_crop(size):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from insightface.utils import face_align

        reference = face_align.norm_crop(astronaut(), ASTRO_KPS, size)
    crop = norm_crop(astronaut(), ASTRO_KPS, size)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    np.testing.assert_array_equal(crop, reference)


def test_keypoints_land_on_the_template():
    angle = np.deg2rad(20)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    kps = (ARCFACE_TEMPLATE @ rot.T) * 1.7 + [300, 40]  # an exact similarity of the template
    for size in (112, 224):
        matrix = estimate_norm(kps, size)
        mapped = kps @ matrix[:, :2].T + matrix[:, 2]
        np.testing.assert_allclose(mapped, ARCFACE_TEMPLATE * size / 112, atol=1e-3)


def test_bad_inputs():
    with pytest.raises(ValueError, match="multiple of 112 or 128"):
        estimate_norm(ASTRO_KPS, 100)
    with pytest.raises(ValueError, match="degenerate keypoints"):
        estimate_norm(np.zeros((5, 2)), 112)
