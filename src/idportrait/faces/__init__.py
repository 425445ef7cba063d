"""Face analysis: detection, 5-point alignment, identity embeddings and face parsing.

Everything other areas need goes through a few names:

- `Face`, `Parsing` (records, `idportrait.faces.types`);
- `get_face_analyzer(name, model_dir=None, device="cpu", det_size=640)` -> an analyzer with
  ``detect(image_rgb) -> list[Face]`` (largest first), ``detect_batch(images)`` (one call for many photos; the
  insightface backends batch their networks) and ``largest_face(image, path_for_errors)``;
- `get_face_parser("bisenet", weights=...)` or `get_face_parser("landmarks")` -> a parser with
  ``parse(image_rgb, face=None) -> Parsing``;
- `region_images(image, parsing)` -> the ConsistentID region images (photo on black, whole frame);
- `norm_crop(image, kps, size)` -> the 5-point aligned crop (112 for ArcFace, 224 for CLIP).

Images are RGB (PIL or uint8 [H, W, 3] arrays) everywhere; backends that need BGR convert inside.
Imports are lazy so that ``import idportrait.faces`` stays cheap.
"""

from __future__ import annotations

from typing import Any

from idportrait.faces.types import Face, Parsing

__all__ = ["Face", "Parsing", "get_face_analyzer", "get_face_parser", "norm_crop", "region_images"]

_LAZY = {
    "get_face_analyzer": "idportrait.faces.analyzer",
    "get_face_parser": "idportrait.faces.analyzer",
    "region_images": "idportrait.faces.parsing",
    "norm_crop": "idportrait.faces.align",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
