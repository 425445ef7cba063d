"""Face detection for the image stage: a batch callable ``detect(images_rgb) -> list[list[Face]]``.

Any callable with that signature works (tests pass their own); `make_detector` builds one from a
face analyzer name of `idportrait.faces` ("insightface:antelopev2", the FaceID-6M default, or the
offline "dlib") on a device, cached per process so each worker loads its models once. It calls
`FaceAnalyzer.detect_batch`: one call per batch of images, so a backend with a batch path (several
images per GPU launch) gets them together; each image's faces come largest first, as from `detect`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from idportrait.faces.types import Face

BatchDetector = Callable[[list[np.ndarray]], list[list[Face]]]


@lru_cache(maxsize=4)
def make_detector(
    name: str, model_dir: str | None = None, device: str = "cpu", threads: int | None = None
) -> BatchDetector:
    """``detect(images: list of RGB uint8 [H, W, 3]) -> faces per image`` of the named face analyzer.

    ``model_dir``: folder holding the insightface model pack (None: insightface's default root).
    ``device``: "cpu", "cuda", "cuda:N" or "auto" (insightface on onnxruntime's CUDA provider where
    it has one; dlib runs on the CPU whatever it is). ``threads``: CPU threads of each onnxruntime session
    (None: one per core).
    """
    from idportrait.faces import get_face_analyzer

    return get_face_analyzer(name, model_dir=model_dir, device=device, threads=threads).detect_batch
