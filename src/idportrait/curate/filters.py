"""The FaceID-6M filters: small pure functions ``(sample, config) -> Decision``.

Each one looks at what the sample already holds (caption, metadata size, decoded image, detected
faces) and returns keep, or drop with one reason from `idportrait.curate.reasons`. None of them
loads, downloads or detects anything: the stages in `cascade` do that and then call these.

`FILTERS` lists them in cascade order (cheapest first). A sample's decision is the first failing
filter's, or keep when all pass.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from idportrait.curate import reasons
from idportrait.curate.config import CurateConfig
from idportrait.curate.keywords import find_person_keyword
from idportrait.curate.language import detect_language
from idportrait.curate.types import KEEP, Decision, Sample
from idportrait.faces.types import Face

Filter = Callable[[Sample, CurateConfig], Decision]


# --- text stage: no pixels needed ----------------------------------------------------------------


def filter_readable(sample: Sample, cfg: CurateConfig) -> Decision:
    """Rows that could not be read (missing caption column or value, caption not UTF-8) are dropped."""
    return Decision.drop(sample.load_error) if sample.load_error else KEEP


def filter_metadata_resolution(sample: Sample, cfg: CurateConfig) -> Decision:
    """Both metadata sides >= ``cfg.min_side``; unknown sizes pass (confirmed after decoding)."""
    if sample.width is None or sample.height is None:
        return KEEP
    if min(sample.width, sample.height) < cfg.min_side:
        return Decision.drop(reasons.LOW_RESOLUTION_METADATA)
    return KEEP


def filter_language(sample: Sample, cfg: CurateConfig) -> Decision:
    """The caption's detected language is ``cfg.language``."""
    if not sample.caption:
        return Decision.drop(reasons.MISSING_CAPTION)
    return KEEP if detect_language(sample.caption) == cfg.language else Decision.drop(reasons.NOT_ENGLISH)


def filter_person_keywords(sample: Sample, cfg: CurateConfig) -> Decision:
    """The caption contains a people / nationality / ethnicity / profession keyword."""
    if sample.caption and find_person_keyword(sample.caption, cfg.keyword_lists):
        return KEEP
    return Decision.drop(reasons.NO_PERSON_IN_CAPTION)


def filter_person_entities(sample: Sample, cfg: CurateConfig, entities: list[str]) -> Decision:
    """spaCy found at least one PERSON entity (``entities``) in the caption."""
    return KEEP if cfg.use_ner and entities else Decision.drop(reasons.NO_PERSON_IN_CAPTION)


def filter_person_caption(sample: Sample, cfg: CurateConfig) -> Decision:
    """Keyword match OR a PERSON entity (NER on this one caption; the cascade batches it instead)."""
    if filter_person_keywords(sample, cfg).keep:
        return KEEP
    if not cfg.use_ner or not sample.caption:
        return Decision.drop(reasons.NO_PERSON_IN_CAPTION)
    from idportrait.curate.ner import person_entities

    return filter_person_entities(sample, cfg, person_entities([sample.caption])[0])


# --- image stage: needs the decoded image and its detections -------------------------------------


def filter_decoded(sample: Sample, cfg: CurateConfig) -> Decision:
    """The image bytes were fetched and decoded into pixels."""
    if sample.image is not None:
        return KEEP
    return Decision.drop(sample.fetch_error or reasons.BROKEN_IMAGE)


def filter_image_resolution(sample: Sample, cfg: CurateConfig) -> Decision:
    """Both decoded sides >= ``cfg.min_side``."""
    if sample.image is None:
        return filter_decoded(sample, cfg)
    height, width = sample.image.shape[:2]
    return KEEP if min(width, height) >= cfg.min_side else Decision.drop(reasons.LOW_RESOLUTION)


def confident_faces(faces: list[Face] | None, det_score: float) -> list[Face]:
    """Detections with score >= ``det_score``, largest bbox first; weaker ones are ignored entirely."""
    kept = [f for f in faces or [] if f.score >= det_score]
    return sorted(kept, key=lambda f: f.area, reverse=True)


def largest_face_ratio(faces: list[Face], width: int, height: int) -> float:
    """Area of the largest face bbox (clipped to the image) / image area, in [0, 1]; 0 without faces.

    This is the "face area" of the FaceID-6M face-size filter: detector bbox (x1, y1, x2, y2) in
    pixels, clipped to [0, width] x [0, height], area = box width x box height, divided by
    width x height of the decoded image.
    """
    best = 0.0
    for face in faces:
        x1, y1, x2, y2 = np.clip(face.bbox, 0, [width, height, width, height]).tolist()
        best = max(best, max(x2 - x1, 0.0) * max(y2 - y1, 0.0))
    return best / float(width * height)


def filter_face_count(sample: Sample, cfg: CurateConfig) -> Decision:
    """Between ``cfg.min_faces`` and ``cfg.max_faces`` confident faces."""
    if sample.image is None:
        return filter_decoded(sample, cfg)
    n = len(confident_faces(sample.faces, cfg.det_score))
    if n < cfg.min_faces:
        return Decision.drop(reasons.NO_FACE)
    if n > cfg.max_faces:
        return Decision.drop(reasons.TOO_MANY_FACES)
    return KEEP


def filter_face_size(sample: Sample, cfg: CurateConfig) -> Decision:
    """The largest confident face covers >= ``cfg.min_face_ratio`` of the image (`largest_face_ratio`)."""
    if sample.image is None:
        return filter_decoded(sample, cfg)
    height, width = sample.image.shape[:2]
    ratio = largest_face_ratio(confident_faces(sample.faces, cfg.det_score), width, height)
    return KEEP if ratio >= cfg.min_face_ratio else Decision.drop(reasons.FACE_TOO_SMALL)


TEXT_FILTERS: tuple[Filter, ...] = (filter_readable, filter_metadata_resolution, filter_language)
"""Cheap text/metadata filters, before the person-caption filter (keywords, then NER)."""
IMAGE_FILTERS: tuple[Filter, ...] = (filter_decoded, filter_image_resolution, filter_face_count, filter_face_size)
FILTERS: tuple[Filter, ...] = (*TEXT_FILTERS, filter_person_caption, *IMAGE_FILTERS)
"""Every filter in cascade order."""


def first_failure(sample: Sample, cfg: CurateConfig, filters: tuple[Filter, ...]) -> Decision:
    """The first failing filter's decision, or keep."""
    for check in filters:
        decision = check(sample, cfg)
        if not decision.keep:
            return decision
    return KEEP
