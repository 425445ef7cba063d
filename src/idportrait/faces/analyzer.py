"""One interface over the face backends: `get_face_analyzer` and `get_face_parser`.

    analyzer = get_face_analyzer("insightface:buffalo_l", model_dir="~/models/insightface")
    face = analyzer.largest_face(photo, "photo.jpg")     # Face, raw + normed embedding
    parser = get_face_parser("bisenet", weights="face_parsing.pth")
    parsing = parser.parse(photo)                         # Parsing (labels, regions, person mask)
    crops = region_images(photo, parsing)                 # ConsistentID region images

Analyzer names: "insightface:buffalo_l" (ConsistentID, IP-Adapter-FaceID), "insightface:antelopev2"
(FaceID-6M, InstantID), "dlib" / "dlib:hog" / "dlib:cnn" (offline, weights from face-recognition-models).
"insightface-torch:<pack>" runs the same pack files with torch instead of onnxruntime (on any torch device, many
photos per network call; `idportrait.faces.insightface_torch`).
Parser names: "bisenet" (weights: a local face_parsing.pth, or None for the hub file) and "landmarks".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from idportrait.errors import NoFaceError, UserError
from idportrait.faces.image import as_rgb_array
from idportrait.faces.types import Face, Parsing
from idportrait.registry import FACE_BACKEND_CONSISTENTID


class FaceBackend(Protocol):
    """What every backend offers; a backend may also offer ``detect_batch(rgbs, embed)`` (see `FaceAnalyzer`)."""

    def detect(self, rgb: np.ndarray, embed: bool = True) -> list[Face]: ...


class FaceParser(Protocol):
    """What every parser offers (`get_face_parser`): the label map and regions of the (given) face.

    ``size``: the square resolution a parser that resizes the photo runs at (BiSeNet: 512 by default; the
    ConsistentID SDXL release parses at 1280); None for the parser's own.
    """

    def parse(self, image: Image.Image | np.ndarray, face: Face | None = None, size: int | None = None) -> Parsing: ...


class FaceFinder(Protocol):
    """What pipelines and annotation need of an analyzer (`FaceAnalyzer` or a test double): the largest face."""

    def largest_face(self, image: Image.Image | np.ndarray, path_for_errors: str | Path | None = None) -> Face: ...


FaceDetector = Callable[[Image.Image], list[Face]]
"""RGB image -> faces, largest first (``get_face_analyzer(...).detect``)."""


@dataclass
class FaceAnalyzer:
    """A backend plus the checks and ordering every caller wants."""

    name: str
    backend: FaceBackend

    def detect(self, image: Image.Image | np.ndarray, embed: bool = True) -> list[Face]:
        """All faces in an RGB image (PIL or uint8 [H, W, 3]), largest bbox area first."""
        faces = self.backend.detect(as_rgb_array(image), embed=embed)
        return sorted(faces, key=lambda f: f.area, reverse=True)

    def detect_batch(self, images: list[Image.Image | np.ndarray], embed: bool = True) -> list[list[Face]]:
        """`detect` of each image, in order: one call, so a backend with ``detect_batch`` can batch the work.

        Backends without a batch path run their per-image ``detect``; either way each image's faces are
        largest bbox area first, as `detect` gives them.
        """
        rgbs = [as_rgb_array(image) for image in images]
        batch = getattr(self.backend, "detect_batch", None)
        if batch is not None:
            per_image = batch(rgbs, embed=embed)
        else:
            per_image = [self.backend.detect(rgb, embed=embed) for rgb in rgbs]
        return [sorted(faces, key=lambda f: f.area, reverse=True) for faces in per_image]

    def largest_face(
        self,
        image: Image.Image | np.ndarray,
        path_for_errors: str | Path | None = None,
        *,
        min_size: float = 0,
        max_faces: int | None = None,
    ) -> Face:
        """The face with the largest bbox area (not insightface's centre-weighted pick).

        Raises `NoFaceError` naming ``path_for_errors`` (default: a PIL image's ``filename``) when there
        is no face, when the largest face's shorter side is below ``min_size`` pixels, or when more than
        ``max_faces`` faces are found.
        """
        path_for_errors = path_for_errors or getattr(image, "filename", None) or None
        faces = self.detect(image)
        if not faces:
            raise NoFaceError(f"no face found ({self.name})", path_for_errors)
        if max_faces is not None and len(faces) > max_faces:
            raise NoFaceError(f"{len(faces)} faces found, at most {max_faces} allowed ({self.name})", path_for_errors)
        face = faces[0]
        if face.size < min_size:
            raise NoFaceError(
                f"largest face is too small ({face.size:.0f} px, at least {min_size:.0f} px needed)", path_for_errors
            )
        return face


def get_face_analyzer(
    name: str = FACE_BACKEND_CONSISTENTID,
    model_dir: str | Path | None = None,
    device: str = "cpu",
    det_size: int = 640,
    threads: int | None = None,
) -> FaceAnalyzer:
    """Build a `FaceAnalyzer` by name (see the module docstring); nothing is downloaded.

    ``insightface:<pack>`` on a CUDA ``device`` runs on onnxruntime's CUDA provider (the ``gpu`` extra), or, with
    the CPU build of onnxruntime, as ``insightface-torch:<pack>`` (the same graphs in torch on the GPU) rather
    than on the CPU. ``threads``: CPU threads of each onnxruntime session (`InsightFaceBackend`; None: one per
    core). An unknown name is a `UserError` (`check_analyzer_name`).
    """
    check_analyzer_name(name)
    kind, _, variant = name.partition(":")
    if kind == "insightface" and str(device) != "cpu":
        import onnxruntime
        import torch

        from idportrait.faces.insightface_backend import insightface_runtime

        gpu = str(device).startswith("cuda") or str(device) == "auto"
        runtime = insightface_runtime("cuda", onnxruntime.get_available_providers())
        if gpu and torch.cuda.is_available() and runtime == "torch":
            kind = "insightface-torch"
    if kind == "insightface-torch":
        from idportrait.devices import pick_device
        from idportrait.faces.insightface_torch import InsightFaceTorchBackend
        from idportrait.registry import INSIGHTFACE_CONSISTENTID

        pack = variant or INSIGHTFACE_CONSISTENTID
        backend = InsightFaceTorchBackend(pack, model_dir=model_dir, device=pick_device(device), det_size=det_size)
        return FaceAnalyzer(f"insightface-torch:{pack}", backend)
    if kind == "insightface":
        from idportrait.faces.insightface_backend import InsightFaceBackend
        from idportrait.registry import INSIGHTFACE_CONSISTENTID

        pack = variant or INSIGHTFACE_CONSISTENTID
        backend = InsightFaceBackend(pack, model_dir=model_dir, device=device, det_size=det_size, threads=threads)
        return FaceAnalyzer(f"insightface:{pack}", backend)
    from idportrait.faces.dlib_backend import DlibBackend

    return FaceAnalyzer(f"dlib:{variant or 'hog'}", DlibBackend(detector=variant or "hog"))


ANALYZER_NAMES = "insightface:buffalo_l, insightface:antelopev2, insightface-torch:<pack>, dlib or dlib:cnn"
PARSER_NAMES = ("bisenet", "landmarks")


def check_analyzer_name(name: str) -> None:
    """`UserError` unless ``name`` is ``insightface[-torch][:<pack>]`` or ``dlib[:hog|cnn]`` (checked before models
    load)."""
    kind, _, variant = name.partition(":")
    if kind in ("insightface", "insightface-torch") or (kind == "dlib" and variant in ("", "hog", "cnn")):
        return
    raise UserError(f"unknown face analyzer {name!r}; use {ANALYZER_NAMES}")


def check_parser_name(name: str) -> None:
    """`UserError` unless ``name`` is one of `PARSER_NAMES`."""
    if name not in PARSER_NAMES:
        raise UserError(f"unknown face parser {name!r}; use {' or '.join(PARSER_NAMES)}")


def get_face_parser(name: str = "bisenet", weights: str | Path | None = None, device: str = "cpu") -> FaceParser:
    """Build a face parser: "bisenet" (ConsistentID's; ``weights`` = local face_parsing.pth or None for the
    hub file; device "cpu", "cuda[:i]" or "auto") or "landmarks" (dlib 68-point polygons, no weights)."""
    check_parser_name(name)
    if name == "landmarks":
        from idportrait.faces.landmark_parsing import LandmarkParser

        return LandmarkParser()
    from idportrait.devices import pick_device
    from idportrait.faces.bisenet import load_bisenet
    from idportrait.faces.parsing import BiSeNetParser, default_bisenet_weights

    return BiSeNetParser(load_bisenet(weights or default_bisenet_weights(), device=pick_device(device)))
