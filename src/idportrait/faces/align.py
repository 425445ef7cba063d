"""5-point face alignment onto the ArcFace template (insightface ``norm_crop``).

The five keypoints (left eye, right eye, nose, left/right mouth corner) are mapped by a least-squares
similarity transform (Umeyama, as ``skimage.transform.SimilarityTransform``) onto the 112x112 ArcFace
template, scaled for other sizes: 112 for ArcFace recognition, 224 for CLIP image encoders.
"""

from __future__ import annotations

import cv2
import numpy as np
from skimage.transform import SimilarityTransform

ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)
"""Keypoint positions [5, 2] in a 112x112 ArcFace crop."""


def estimate_norm(kps: np.ndarray, size: int = 112) -> np.ndarray:
    """Affine matrix float64 [2, 3] mapping image pixels to the ``size`` x ``size`` aligned crop.

    ``size`` must be a multiple of 112 (template scaled) or of 128 (template scaled and shifted right).
    """
    kps = np.asarray(kps, dtype=np.float32).reshape(5, 2)
    if size % 112 == 0:
        dst = ARCFACE_TEMPLATE * (size / 112.0)
    elif size % 128 == 0:
        dst = ARCFACE_TEMPLATE * (size / 128.0)
        dst[:, 0] += 8.0 * size / 128.0
    else:
        raise ValueError(f"aligned crop size must be a multiple of 112 or 128, got {size}")
    tform = SimilarityTransform.from_estimate(kps, dst)
    if not tform:
        raise ValueError(f"degenerate keypoints, no similarity transform: {kps.tolist()}")
    return tform.params[0:2, :]


def norm_crop(image: np.ndarray, kps: np.ndarray, size: int = 112) -> np.ndarray:
    """Aligned face crop uint8 [size, size, 3] (same channel order as ``image``), black outside the photo."""
    return cv2.warpAffine(np.asarray(image), estimate_norm(kps, size), (size, size), borderValue=0.0)
