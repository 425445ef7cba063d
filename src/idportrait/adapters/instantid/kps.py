"""The 5-keypoint control image IdentityNet was trained on.

Black canvas; four limbs from the nose to each eye and mouth corner drawn as filled ellipses (half-width 4 px,
coloured by the non-nose end), dimmed to 60 %; then a filled circle of radius 10 px on each keypoint.
Colours by keypoint (insightface order): left eye red, right eye green, nose blue, left mouth yellow,
right mouth magenta.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image

KPS_COLOURS = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255))
LIMBS = ((0, 2), (1, 2), (3, 2), (4, 2))
LIMB_HALF_WIDTH = 4
POINT_RADIUS = 10


def draw_kps(size: tuple[int, int], kps: np.ndarray) -> Image.Image:
    """Control image (RGB, ``size`` = (width, height)) for keypoints float [5, 2] in that frame's pixels."""
    width, height = size
    kps = np.asarray(kps, dtype=np.float64).reshape(5, 2)
    canvas = np.zeros((height, width, 3), dtype=np.float64)
    for start, end in LIMBS:
        (x0, y0), (x1, y1) = kps[start], kps[end]
        length = math.hypot(x0 - x1, y0 - y1)
        angle = math.degrees(math.atan2(y0 - y1, x0 - x1))
        centre = (int(np.mean([x0, x1])), int(np.mean([y0, y1])))
        polygon = cv2.ellipse2Poly(centre, (int(length / 2), LIMB_HALF_WIDTH), int(angle), 0, 360, 1)
        canvas = cv2.fillConvexPoly(canvas, polygon, KPS_COLOURS[start])
    canvas = (canvas * 0.6).astype(np.uint8)
    for (x, y), colour in zip(kps, KPS_COLOURS, strict=True):
        canvas = cv2.circle(canvas, (int(x), int(y)), POINT_RADIUS, colour, -1)
    return Image.fromarray(canvas)
