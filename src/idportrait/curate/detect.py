"""Face detection for the image stage: a callable ``detect(image_rgb) -> list[Face]``.

Any callable with that signature works (tests pass their own); `make_detector` builds one from a
face analyzer name of `idportrait.faces` ("insightface:antelopev2", the FaceID-6M default, or the
offline "dlib"), cached per process so each worker loads its models once.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from idportrait.faces.types import Face

Detector = Callable[[np.ndarray], list[Face]]


@lru_cache(maxsize=4)
def make_detector(name: str, model_dir: str | None = None) -> Detector:
    """``detect(image_rgb uint8 [H, W, 3]) -> list[Face]`` of the named face analyzer.

    ``model_dir``: folder holding the insightface model pack (None: insightface's default root).
    """
    from idportrait.faces import get_face_analyzer

    return get_face_analyzer(name, model_dir=model_dir).detect
