"""Face parsing from dlib's 68 landmarks: CelebAMask-HQ-style label maps without BiSeNet weights.

Drawn at the photo's resolution, in this order (later classes overwrite earlier ones):

- ears (7 image-left, 8 image-right): APPROXIMATED, no landmark touches the ears. An ellipse beside
  jaw points 1 / 15, pushed out by 6% of the jaw width, semi-axes 7% x 16% of that width, turned with
  the face. The ear on the side the face turns away from (nose tip within 30% of the jaw width from that
  jaw edge) is treated as hidden and left out.
- face skin (1): jaw line 0-16 closed over a forehead made by lifting the eyebrows by 30% of the
  eye-to-chin distance.
- eyebrows (2, 3), eyes (4, 5: image-left is "Left"), nose (10: hull of points 27-35, widened),
  upper lip (12: 48-54 over 60-64), lower lip (13: 54-59 over 64-67), inner mouth (11: 60-67).

Hair, neck, clothes and background stay 0, so `Parsing.person_mask` covers only face and ears.
The result goes through the same `extract_regions` as BiSeNet's, so regions and region images are
computed the same way.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from idportrait.errors import NoFaceError
from idportrait.faces.image import as_rgb_array
from idportrait.faces.labels import CLASS_IDS
from idportrait.faces.parsing import extract_regions
from idportrait.faces.types import Face, Parsing

EAR_OFFSET, EAR_HALF_WIDTH, EAR_HALF_HEIGHT = 0.06, 0.07, 0.16
FOREHEAD_LIFT = 0.30
HIDDEN_EAR_RATIO = 0.30


def landmark_labels(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """68 landmarks [68, 2] (pixels) -> uint8 label map [H, W] with CelebAMask-HQ ids."""
    points = np.asarray(points, np.float32).reshape(68, 2)
    labels = np.zeros(shape, np.uint8)
    eye_mid = points[36:48].mean(0)
    up = eye_mid - points[8]
    face_height = float(np.linalg.norm(up))
    up = up / max(face_height, 1e-6)
    jaw_width = float(np.linalg.norm(points[16] - points[0]))

    for side, jaw_i, edge_i, label in ((-1, 1, 0, "Left_Ear"), (1, 15, 16, "Right_Ear")):
        nose_to_edge = abs(float(np.dot(points[30] - points[edge_i], points[16] - points[0]))) / max(jaw_width, 1e-6)
        if nose_to_edge < HIDDEN_EAR_RATIO * jaw_width:
            continue
        across = (points[16] - points[0]) / max(jaw_width, 1e-6)
        centre = points[jaw_i] + side * across * EAR_OFFSET * jaw_width
        angle = float(np.degrees(np.arctan2(across[1], across[0])))
        axes = (round(EAR_HALF_WIDTH * jaw_width), round(EAR_HALF_HEIGHT * jaw_width))
        cv2.ellipse(labels, _pt(centre), axes, angle, 0, 360, CLASS_IDS[label], thickness=-1)

    forehead = points[26:16:-1] + up * FOREHEAD_LIFT * face_height
    _fill(labels, np.concatenate([points[0:17], forehead]), "Face")
    for brow, label in ((points[17:22], "Left_Eyebrow"), (points[22:27], "Right_Eyebrow")):
        _fill(labels, np.concatenate([brow, brow[::-1] - up * 0.04 * face_height]), label)
    _fill(labels, points[36:42], "Left_Eye")
    _fill(labels, points[42:48], "Right_Eye")
    nostril = points[35] - points[31]
    nose = np.concatenate(
        [
            points[27:36],
            [points[31] - 0.25 * nostril, points[35] + 0.25 * nostril],
            [points[27] - 0.2 * nostril, points[27] + 0.2 * nostril],
        ]
    )
    _fill(labels, cv2.convexHull(nose.astype(np.float32)).reshape(-1, 2), "Nose")
    _fill(labels, np.concatenate([points[48:55], points[64:59:-1]]), "Upper_Lip")
    _fill(labels, np.concatenate([points[54:60], points[48:49], points[60:61], points[67:63:-1]]), "Lower_Lip")
    _fill(labels, points[60:68], "Mouth")
    return labels


def _pt(p: np.ndarray) -> tuple[int, int]:
    return round(float(p[0])), round(float(p[1]))


def _fill(labels: np.ndarray, polygon: np.ndarray, name: str) -> None:
    cv2.fillPoly(labels, [np.round(polygon).astype(np.int32)], CLASS_IDS[name])


class LandmarkParser:
    """``parse(image_rgb, face=None) -> Parsing`` at the photo's resolution from 68 dlib landmarks (a ``size``
    is accepted for the `FaceParser` interface and ignored: the polygons are drawn on the photo itself).

    Uses ``face.landmarks`` when the face comes from the dlib analyzer. A face from another backend
    (insightface) is matched to the dlib face overlapping it most, and without such a face dlib's
    68-point predictor runs inside the given box. With no face given the largest dlib face is used;
    `NoFaceError` when there is none.
    """

    def __init__(self) -> None:
        self._backend = None

    def parse(self, image: Image.Image | np.ndarray, face: Face | None = None, size: int | None = None) -> Parsing:
        rgb = as_rgb_array(image)
        if face is None or face.landmarks is None or len(face.landmarks) != 68:
            face = self._dlib_face(rgb, face)
        return extract_regions(landmark_labels(rgb.shape[:2], face.landmarks))

    def _dlib_face(self, rgb: np.ndarray, given: Face | None) -> Face:
        from idportrait.faces.dlib_backend import DlibBackend

        if self._backend is None:
            self._backend = DlibBackend(landmarks="68")
        faces = self._backend.detect(rgb, embed=False)
        if given is None:
            if not faces:
                raise NoFaceError("no face found for landmark parsing")
            return max(faces, key=lambda f: f.area)
        best = max(faces, key=lambda f: box_iou(f.bbox, given.bbox), default=None)
        if best is not None and box_iou(best.bbox, given.bbox) > 0.3:
            return best
        return self._backend.landmarks_in_box(rgb, given.bbox)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
