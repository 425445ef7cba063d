"""The records every other area receives from face analysis.

`Face` is one detected face; `Parsing` is one face-parsing result. Both are plain dataclasses of
numpy arrays so they cross module boundaries without pulling in any backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Face:
    """One detected face, in the pixel coordinates of the image it was found in.

    bbox: float32 [4] (x1, y1, x2, y2), pixels.
    kps: float32 [5, 2] (x, y) of left eye, right eye, nose tip, left mouth corner, right mouth corner
        (insightface order; "left" is the image-left side).
    score: detector confidence in [0, 1] (dlib HOG scores are squashed into [0, 1]).
    embedding: float32 [D] raw identity embedding (512 for ArcFace, 128 for dlib), or None when the
        analyzer ran without a recogniser. ConsistentID and IP-Adapter-FaceID use `normed_embedding`
        (buffalo_l); InstantID uses the raw `embedding` (antelopev2), as their releases do.
    landmarks: optional float32 [N, 2] dense landmarks (68 for dlib), used by the landmark parser.
    """

    bbox: np.ndarray
    kps: np.ndarray
    score: float
    embedding: np.ndarray | None = None
    landmarks: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.bbox = np.asarray(self.bbox, dtype=np.float32).reshape(4)
        self.kps = np.asarray(self.kps, dtype=np.float32).reshape(5, 2)
        self.score = float(self.score)
        if self.embedding is not None:
            self.embedding = np.asarray(self.embedding, dtype=np.float32).reshape(-1)
        if self.landmarks is not None:
            self.landmarks = np.asarray(self.landmarks, dtype=np.float32).reshape(-1, 2)

    @property
    def normed_embedding(self) -> np.ndarray | None:
        """L2-normalised `embedding` (float32 [D]), as insightface's ``Face.normed_embedding``."""
        if self.embedding is None:
            return None
        return (self.embedding / max(float(np.linalg.norm(self.embedding)), 1e-12)).astype(np.float32)

    @property
    def area(self) -> float:
        """True bbox area in pixels² (width x height, clipped at 0)."""
        x1, y1, x2, y2 = (float(v) for v in self.bbox)
        return max(x2 - x1, 0.0) * max(y2 - y1, 0.0)

    @property
    def size(self) -> float:
        """Shorter bbox side in pixels (what face-size filters compare)."""
        x1, y1, x2, y2 = (float(v) for v in self.bbox)
        return max(min(x2 - x1, y2 - y1), 0.0)


@dataclass
class Parsing:
    """One face-parsing result at the parser's resolution (512x512 for BiSeNet, else the photo's).

    labels: uint8 [H, W], CelebAMask-HQ class ids 0..18 (see `idportrait.faces.labels`).
    regions: region name -> bool mask [H, W], in ConsistentID region order (at most Face, Left_Eye,
        Left_Ear, Nose, Upper_Lip; see `labels.REGION_LABELS`).
    person_mask: bool [H, W], every pixel that is not background.
    """

    labels: np.ndarray
    regions: dict[str, np.ndarray]
    person_mask: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the label map."""
        return (int(self.labels.shape[0]), int(self.labels.shape[1]))
