"""The face work the embedding-conditioned methods share: the largest face per photo, averaged over photos."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from idportrait.errors import NoFaceError
from idportrait.faces.analyzer import FaceDetector
from idportrait.faces.types import Face


def as_photo_list(reference: Image.Image | list[Image.Image]) -> list[Image.Image]:
    """One photo or several photos of one person -> a list."""
    return [reference] if isinstance(reference, Image.Image) else list(reference)


def largest_faces(detect: FaceDetector, photos: list[Image.Image], source: str) -> list[Face]:
    """The largest face of each photo; it must carry an identity embedding.

    Raises `NoFaceError` naming ``source`` (and the photo's index when there are several).
    """
    faces = []
    for i, photo in enumerate(photos):
        where = source if len(photos) == 1 else f"{source} #{i}"
        found = detect(photo)
        if not found:
            raise NoFaceError("no face found in the reference photo", where)
        if found[0].embedding is None:
            raise NoFaceError("the face analyzer returned no identity embedding", where)
        faces.append(found[0])
    return faces


def mean_identity(faces: list[Face]) -> torch.Tensor:
    """Mean of the faces' normed identity embeddings, float32 [D]."""
    return torch.from_numpy(np.stack([f.normed_embedding for f in faces]).mean(0).astype(np.float32))
