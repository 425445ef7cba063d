"""Offline face backend on dlib, with the weights shipped in the ``face-recognition-models`` package.

Works with no model download: HOG (or CNN/MMOD) detection, 68-point (or 5-point) landmarks and dlib's
128-D ResNet face descriptor. The five insightface-order keypoints come from the 68 landmarks (eye
centres = mean of each eye's 6 points, nose tip = point 30, mouth corners = points 48 and 54). With the
smaller 5-point model the eye centres and the nose base are measured and the mouth corners are
estimated from the ArcFace template proportions.

CPU only (dlib-bin has no CUDA). Embeddings are dlib descriptors (float32 [128], norm about 1-1.5);
same person: cosine > ~0.9, distance < 0.6 (dlib's rule). Not interchangeable with ArcFace embeddings.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from idportrait.errors import ModelNotFoundError
from idportrait.faces.types import Face

MODEL_FILES = {
    "hog": None,
    "cnn": "mmod_human_face_detector.dat",
    "5": "shape_predictor_5_face_landmarks.dat",
    "68": "shape_predictor_68_face_landmarks.dat",
    "descriptor": "dlib_face_recognition_resnet_model_v1.dat",
}

HOG_THRESHOLD = 0.25
"""HOG margin above which a window is a face (0 is dlib's default; 0.25 drops weak false positives)."""


def dlib_models_dir() -> Path:
    """The ``models/`` folder of the installed face-recognition-models package.

    Found with ``importlib.util.find_spec`` without importing the package (its ``__init__`` imports
    ``pkg_resources``, which recent setuptools no longer ship).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise ModelNotFoundError(
            "the dlib backend needs the face-recognition-models package (pip install face-recognition-models==0.3.0)"
        )
    return Path(spec.origin).parent / "models"


def dlib_model_file(kind: str) -> Path:
    """The weights file of one model kind ("cnn", "5", "68", "descriptor"); only the files in use must exist."""
    path = dlib_models_dir() / MODEL_FILES[kind]
    if not path.is_file():
        raise ModelNotFoundError(f"face-recognition-models is incomplete, missing {path.name}", path)
    return path


def kps_from_68(points: np.ndarray) -> np.ndarray:
    """68 dlib landmarks [68, 2] -> 5 keypoints [5, 2] (left eye, right eye, nose tip, mouth corners)."""
    return np.stack([points[36:42].mean(0), points[42:48].mean(0), points[30], points[48], points[54]]).astype(
        np.float32
    )


def kps_from_5(points: np.ndarray) -> np.ndarray:
    """dlib 5-point landmarks [5, 2] (right-eye corners, left-eye corners, nose base) -> 5 keypoints.

    Mouth corners are estimated: centre at 0.6 x (nose base - eye midpoint) below the nose base, half
    width 0.41 x the eye distance (ArcFace template proportions).
    """
    left_eye = points[2:4].mean(0)
    right_eye = points[0:2].mean(0)
    nose = points[4]
    eye_mid = (left_eye + right_eye) / 2
    mouth = nose + 0.6 * (nose - eye_mid)
    half = 0.41 * (right_eye - left_eye)
    return np.stack([left_eye, right_eye, nose, mouth - half, mouth + half]).astype(np.float32)


@functools.cache
def _load_model(kind: str):
    """One shared dlib model per kind ("cnn", "5", "68", "descriptor"); the 68-point file is 100 MB."""
    import dlib

    path = str(dlib_model_file(kind))
    loader = {
        "cnn": dlib.cnn_face_detection_model_v1,
        "5": dlib.shape_predictor,
        "68": dlib.shape_predictor,
        "descriptor": dlib.face_recognition_model_v1,
    }[kind]
    return loader(path)


class DlibBackend:
    """``detect(rgb uint8 [H, W, 3], embed) -> list[Face]`` with dlib.

    detector: "hog" (fast, frontal faces, CPU) or "cnn" (MMOD, more robust, slow on CPU).
    landmarks: "68" (default; also fills `Face.landmarks` for the landmark parser) or "5".
    upsample: image upsampling steps before detection (1 finds faces down to about 40 px).
    """

    def __init__(self, detector: str = "hog", landmarks: str = "68", upsample: int = 1) -> None:
        import dlib

        if detector not in ("hog", "cnn") or landmarks not in ("5", "68"):
            raise ValueError(f"detector must be hog|cnn and landmarks 5|68, got {detector!r}, {landmarks!r}")
        self.detector_kind = detector
        self.landmark_kind = landmarks
        self.upsample = upsample
        self.detector = dlib.get_frontal_face_detector() if detector == "hog" else _load_model("cnn")
        self.predictor = _load_model(landmarks)
        self.encoder = _load_model("descriptor")

    def _detections(self, rgb: np.ndarray) -> list[tuple[object, float]]:
        if self.detector_kind == "hog":
            rects, scores, _ = self.detector.run(rgb, self.upsample, HOG_THRESHOLD)
            return list(zip(rects, scores, strict=True))
        return [(d.rect, d.confidence) for d in self.detector(rgb, self.upsample)]

    def detect(self, rgb: np.ndarray, embed: bool = True) -> list[Face]:
        return [self._face(rgb, rect, margin, embed) for rect, margin in self._detections(rgb)]

    def landmarks_in_box(self, rgb: np.ndarray, bbox: np.ndarray, embed: bool = False) -> Face:
        """Landmarks (and optionally the descriptor) for a face box found elsewhere, e.g. by insightface."""
        import dlib

        x1, y1, x2, y2 = (round(float(v)) for v in bbox)
        return self._face(rgb, dlib.rectangle(x1, y1, x2 - 1, y2 - 1), 0.0, embed)

    def _face(self, rgb: np.ndarray, rect, margin: float, embed: bool) -> Face:
        shape = self.predictor(rgb, rect)
        points = np.array([[p.x, p.y] for p in shape.parts()], np.float32)
        kps = kps_from_68(points) if self.landmark_kind == "68" else kps_from_5(points)
        embedding = np.array(self.encoder.compute_face_descriptor(rgb, shape), np.float32) if embed else None
        return Face(
            bbox=[rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1],
            kps=kps,
            score=1.0 / (1.0 + np.exp(-float(margin))),
            embedding=embedding,
            landmarks=points if self.landmark_kind == "68" else None,
        )
