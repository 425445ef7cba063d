"""ConsistentID region extraction on hand-made label maps."""

import cv2
import numpy as np
import pytest
from PIL import Image

from idportrait.errors import ModelNotFoundError
from idportrait.faces.parsing import default_bisenet_weights, extract_regions, fill_outer_contours, region_images


def _face_labels() -> np.ndarray:
    """64x64: background, face skin ring with holes for both eyes, a nose and both lips, one right ear."""
    labels = np.zeros((64, 64), np.uint8)
    labels[8:56, 12:52] = 1
    labels[20:26, 18:26] = 4
    labels[20:26, 38:46] = 5
    labels[28:36, 29:35] = 10
    labels[40:43, 24:40] = 12
    labels[43:46, 24:40] = 13
    labels[24:34, 52:56] = 8
    labels[56:64, 20:44] = 16  # clothing, not a region but part of the person
    return labels


def test_regions_order_pairs_and_person_mask():
    parsing = extract_regions(_face_labels())
    assert list(parsing.regions) == ["Face", "Left_Eye", "Right_Ear", "Nose", "Upper_Lip"]
    assert all(m.dtype == bool and m.shape == (64, 64) for m in parsing.regions.values())
    np.testing.assert_array_equal(parsing.regions["Left_Eye"], _face_labels() == 4)  # right eye dropped
    np.testing.assert_array_equal(parsing.person_mask, _face_labels() != 0)


def test_face_mask_has_its_holes_filled():
    labels = _face_labels()
    face = extract_regions(labels).regions["Face"]
    assert face[22, 20] and face[30, 31]  # eye and nose holes are inside the filled face contour
    assert not face[30, 53]  # the ear lies outside the face skin
    np.testing.assert_array_equal(face, np.pad(np.ones((48, 40), bool), ((8, 8), (12, 12))))


def test_fill_outer_contours_keeps_separate_blobs_and_fills_rings():
    mask = np.zeros((20, 20), bool)
    mask[2:9, 2:9] = True
    mask[4:7, 4:7] = False  # a ring
    mask[12:15, 12:18] = True
    filled = fill_outer_contours(mask)
    assert filled[5, 5] and filled[13, 15] and not filled[10, 10]
    assert filled.sum() == 49 + 18


def test_no_regions_on_background_only():
    parsing = extract_regions(np.zeros((8, 8), np.uint8))
    assert parsing.regions == {} and not parsing.person_mask.any()


def test_region_images_are_photo_on_black_at_photo_size():
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(1, 255, (128, 96, 3), dtype=np.uint8))
    parsing = extract_regions(_face_labels())
    images = region_images(photo, parsing)
    assert len(images) == len(parsing.regions)
    for img, mask in zip(images, parsing.regions.values(), strict=True):
        assert img.size == photo.size and img.mode == "RGB"
        arr = np.asarray(img)
        big = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(photo.size, Image.NEAREST)) > 0
        inside = cv2.erode(big.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        outside = cv2.dilate(big.astype(np.uint8), np.ones((5, 5), np.uint8)) == 0
        assert inside.any() and outside.any()
        np.testing.assert_array_equal(arr[inside], np.asarray(photo)[inside])
        assert (arr[outside] == 0).all()


def test_default_weights_offline_error_tells_how_to_pass_a_path(tmp_path):
    with pytest.raises(ModelNotFoundError, match=r"face_parsing\.pth.*JackAILab/ConsistentID.*local path"):
        default_bisenet_weights(cache_dir=tmp_path, local_files_only=True)


@pytest.mark.parametrize("size", [(128, 96), (40, 48)])  # masks upsampled to the photo, and downsampled
def test_region_tensors_equal_region_images_within_a_grey_level(size):
    import torch

    from idportrait.faces.parsing import region_tensors

    rng = np.random.default_rng(1)
    photo = Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    parsing = extract_regions(_face_labels())
    expected = [np.asarray(img).astype(np.int16) for img in region_images(photo, parsing)]
    tensors = region_tensors(torch.from_numpy(np.array(photo)).permute(2, 0, 1).float(), parsing)
    assert len(tensors) == len(expected)
    for t, e in zip(tensors, expected, strict=True):
        got = t.permute(1, 2, 0).numpy().astype(np.int16)
        diff = np.abs(got - e)
        assert diff.mean() < 0.05 and np.mean(diff > 1) < 0.002, (diff.mean(), np.mean(diff > 1))
