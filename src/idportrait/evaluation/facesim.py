"""FaceSim: cosine similarity between the identity embeddings of the reference and a generated face, x100.

Two variants, each the one a paper reports:
- ``facenet`` (ConsistentID / PhotoMaker): FaceNet Inception-ResNet-v1 (VGGFace2) on the face crop,
  see `idportrait.evaluation.facenet`. The crop is the detected face box (largest face, clipped to the
  image), resized to 160x160 with area interpolation and standardised as ``(x - 127.5) / 128``. The
  papers detect with facenet-pytorch's MTCNN (it needs torchvision); we use the analyzer we are given,
  so boxes can differ by a few pixels.
- ``arcface`` (FaceID-6M, InstantID, IP-Adapter-FaceID): the analyzer's own ArcFace
  ``normed_embedding`` of the largest face (insightface ``antelopev2`` / ``buffalo_l``).

A generated image without a detectable face has no FaceSim: it gets ``None`` (counted and reported by
the scorer as ``no_face``), never a silent skip and never a zero.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from PIL import Image

from idportrait.evaluation.facenet import FACENET_SIZE, InceptionResnetV1
from idportrait.faces.analyzer import FaceDetector
from idportrait.faces.types import Face

"""RGB image -> faces, largest first (``get_face_analyzer(...).detect``)."""


def arcface_embedding(detect: FaceDetector, image: Image.Image) -> np.ndarray | None:
    """Unit ArcFace embedding float32 [512] of the largest face, or None when there is no face."""
    faces = detect(image)
    if not faces or faces[0].embedding is None:
        return None
    return faces[0].normed_embedding


def facenet_crop(image: Image.Image, face: Face) -> np.ndarray:
    """The face box of ``image`` (clipped) as uint8 [160, 160, 3] RGB, area-resized."""
    array = np.asarray(image.convert("RGB"))
    h, w = array.shape[:2]
    x1, y1, x2, y2 = face.bbox
    x1, y1 = int(np.clip(np.floor(x1), 0, w - 1)), int(np.clip(np.floor(y1), 0, h - 1))
    x2, y2 = int(np.clip(np.ceil(x2), x1 + 1, w)), int(np.clip(np.ceil(y2), y1 + 1, h))
    return cv2.resize(array[y1:y2, x1:x2], (FACENET_SIZE, FACENET_SIZE), interpolation=cv2.INTER_AREA)


@torch.no_grad()
def facenet_embedding(facenet: InceptionResnetV1, detect: FaceDetector, image: Image.Image) -> np.ndarray | None:
    """Unit FaceNet embedding float32 [512] of the largest face, or None when there is no face."""
    faces = detect(image)
    if not faces:
        return None
    crop = torch.from_numpy(facenet_crop(image, faces[0])).permute(2, 0, 1).float()
    param = next(facenet.parameters())
    x = ((crop - 127.5) / 128.0).unsqueeze(0).to(param.device, param.dtype)
    return facenet(x)[0].float().cpu().numpy()


def cosine100(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    """x100 cosine similarity of two embeddings; None when either is missing."""
    if a is None or b is None:
        return None
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(100.0 * a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
