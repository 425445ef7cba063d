"""Curation settings: the FaceID-6M thresholds and the text-stage steps, all overridable from the CLI.

The CLI reads its defaults from `CurateConfig` (one place for each threshold).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from idportrait.errors import UserError
from idportrait.registry import FACE_BACKEND_FACEID6M


@dataclass(frozen=True)
class CurateConfig:
    """Thresholds of the filter cascade (defaults follow the FaceID-6M paper) and its switchable steps.

    drop_nsfw: values of LAION's ``NSFW`` column ("NSFW" / "UNSURE" / "UNLIKELY") that drop a row.
    max_punsafe: rows with LAION's ``punsafe`` (probability unsafe, [0, 1]) >= this are dropped;
        None keeps them all.
    max_pwatermark: rows with ``pwatermark`` (probability watermarked, [0, 1]) >= this are dropped;
        None (default) keeps them all.
    max_caption_chars: captions longer than this (characters) are dropped before any model sees them.
    min_side: both image sides must be >= this many pixels (metadata first, then decoded image).
    language: ISO 639-1 code captions must be in (see `idportrait.curate.language`).
    use_language_column: an input ``LANGUAGE`` column decides the language where it has a value.
    assume_language: every caption is in this language (no detection; "en" for LAION-2B-en).
    use_fasttext: fastText's language ID (``lid.176.ftz``) is evidence for another language next to
        CLD2 and the word lists (`idportrait.curate.language`).
    use_name_gazetteer: person names from the gazetteer (`idportrait.curate.names`): a caption the language
        rules call foreign only because of its names stays English, and a name whose last word is rare
        as an English word finds a person.
    normalise: captions go through `normalise_caption` before language, keywords and NER.
    use_credit: accept captions that end with a credit line "... by <Name>" (`find_credit`).
    use_ner: accept captions with a spaCy PERSON entity when no keyword or credit matched.
    use_ner_recased: a second NER pass, on the sentence-cased caption ("Mtv news - benedict
        cumberbatch likes..."), for Title Case and all-lower-case captions the first pass rejected
        (their letter case hides names from it; `needs_recasing`).
    min_faces, max_faces: allowed number of detected faces (score >= det_score), inclusive.
    min_face_ratio: largest face bbox area / image area must be >= this (0.04 = 4 %); the bbox is
        the detector's box clipped to the image, area = width x height in pixels².
    det_score: detector confidence threshold in [0, 1]; weaker detections are ignored entirely.
    detector: face analyzer name for `idportrait.faces.get_face_analyzer`
        ("insightface:antelopev2" or the offline "dlib").
    face_model_dir: folder holding the insightface model pack (None: insightface's default root).
    keyword_lists: names of the keyword files under ``idportrait/data/curate/keywords``.
    adjective_lists: those of ``keyword_lists`` whose words also qualify things ("Mexican pottery",
        "Celtic heart"): alone they find a person only as plural nouns ("Mexicans"); otherwise the caption
        goes on to NER. Empty: every keyword finds a person (the paper's rule).
    """

    drop_nsfw: tuple[str, ...] = ("NSFW",)
    max_punsafe: float | None = 0.5
    max_pwatermark: float | None = None
    max_caption_chars: int = 2000
    min_side: int = 512
    language: str = "en"
    use_language_column: bool = True
    assume_language: str | None = None
    use_fasttext: bool = True
    use_name_gazetteer: bool = True
    normalise: bool = True
    use_credit: bool = True
    use_ner: bool = True
    use_ner_recased: bool = True
    min_faces: int = 1
    max_faces: int = 3
    min_face_ratio: float = 0.04
    det_score: float = 0.5
    detector: str = FACE_BACKEND_FACEID6M
    face_model_dir: str | None = None
    keyword_lists: tuple[str, ...] = field(default=("people", "nationalities", "ethnicities", "professions"))
    adjective_lists: tuple[str, ...] = field(default=("nationalities", "ethnicities"))

    def __post_init__(self) -> None:
        check_ranges(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    "faceid6m": {
        "use_fasttext": False,
        "use_name_gazetteer": False,
        "normalise": False,
        "use_credit": False,
        "use_ner": True,
        "use_ner_recased": False,
        "adjective_lists": (),
    },
}
"""Named text-stage set-ups. ``faceid6m``: the FaceID-6M paper's person rule exactly: the caption as written
holds a keyword (people, nationality, ethnicity, profession, any use) or a spaCy PERSON entity; language
by the input column, script, CLD2 and word lists."""


def with_preset(cfg: CurateConfig, name: str, keep: Collection[str] = ()) -> CurateConfig:
    """``cfg`` with the text-stage settings of preset ``name``, except the fields named in ``keep``
    (switches the user set explicitly). Raises ValueError for an unknown preset."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return replace(cfg, **{k: v for k, v in PRESETS[name].items() if k not in keep})


def _check(option: str, value: float | None, low: float, high: float = math.inf, what: str = "") -> None:
    """`UserError` unless ``value`` (None passes) is a finite number in [low, high]."""
    if value is None:
        return
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not number or not (low <= value <= high):
        span = f">= {low:g}" if high == math.inf else f"in [{low:g}, {high:g}]"
        raise UserError(f"{option} {value}: must be {what or 'a number'} {span}")


def check_ranges(cfg: CurateConfig) -> None:
    """Every threshold in range (nan is in no range), named by its command-line option."""
    _check("--min-side", cfg.min_side, 0, what="a whole number of pixels")
    _check("--max-caption-chars", cfg.max_caption_chars, 1, what="a number of characters")
    _check("--min-face-ratio", cfg.min_face_ratio, 0, 1, what="an area fraction")
    _check("--det-score", cfg.det_score, 0, 1, what="a score")
    _check("min_faces", cfg.min_faces, 0, what="a count")
    _check("--max-faces", cfg.max_faces, max(cfg.min_faces, 1), what="a count")
    _check("--max-punsafe", cfg.max_punsafe, 0, what="a probability threshold")
    _check("--max-pwatermark", cfg.max_pwatermark, 0, what="a probability threshold")


def default(name: str) -> Any:
    """The default value of one `CurateConfig` field (what the CLI shows and uses)."""
    return next(f.default for f in fields(CurateConfig) if f.name == name)
