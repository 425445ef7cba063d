"""Curation settings: the FaceID-6M thresholds, all overridable from the CLI."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from idportrait.registry import INSIGHTFACE_FACEID6M


@dataclass(frozen=True)
class CurateConfig:
    """Thresholds of the filter cascade (defaults follow the FaceID-6M paper).

    min_side: both image sides must be >= this many pixels (metadata first, then decoded image).
    language: ISO 639-1 code captions must be in (detected by pycld2).
    use_ner: accept captions with a spaCy PERSON entity when no keyword matched.
    min_faces, max_faces: allowed number of detected faces (score >= det_score), inclusive.
    min_face_ratio: largest face bbox area / image area must be >= this (0.04 = 4 %); the bbox is
        the detector's box clipped to the image, area = width x height in pixels².
    det_score: detector confidence threshold in [0, 1]; weaker detections are ignored entirely.
    detector: face analyzer name for `idportrait.faces.get_face_analyzer`
        ("insightface:antelopev2" or the offline "dlib").
    face_model_dir: folder holding the insightface model pack (None: insightface's default root).
    keyword_lists: names of the keyword files under ``idportrait/data/curate/keywords``.
    """

    min_side: int = 512
    language: str = "en"
    use_ner: bool = True
    min_faces: int = 1
    max_faces: int = 3
    min_face_ratio: float = 0.04
    det_score: float = 0.5
    detector: str = f"insightface:{INSIGHTFACE_FACEID6M}"
    face_model_dir: str | None = None
    keyword_lists: tuple[str, ...] = field(default=("people", "nationalities", "ethnicities", "professions"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
