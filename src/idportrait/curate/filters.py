"""The FaceID-6M filters: small pure functions ``(sample, config) -> Decision``.

Each one looks at what the sample already holds (LAION columns, caption, metadata size, decoded
image, detected faces) and returns keep, or drop with one reason from `idportrait.curate.reasons`. None of them
loads, downloads or detects anything: the stages in `cascade` do that and then call these.

`FILTERS` lists them in cascade order (cheapest first). A sample's decision is the first failing
filter's, or keep when all pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from idportrait.curate import reasons
from idportrait.curate.config import CurateConfig
from idportrait.curate.keywords import find_credit, find_person_keyword
from idportrait.curate.language import language_of
from idportrait.curate.names import rare_name
from idportrait.curate.normalise import clip_caption, normalise_caption
from idportrait.curate.types import KEEP, Decision, Sample
from idportrait.faces.types import Face

Filter = Callable[[Sample, CurateConfig], Decision]


# --- metadata stage: LAION's columns and the caption length, free, before any model --------------


def filter_readable(sample: Sample, cfg: CurateConfig) -> Decision:
    """Rows that could not be read (missing caption column or value, caption not UTF-8) are dropped."""
    return Decision.drop(sample.load_error) if sample.load_error else KEEP


def filter_nsfw_tag(sample: Sample, cfg: CurateConfig) -> Decision:
    """LAION's ``NSFW`` column is not one of ``cfg.drop_nsfw`` (rows without the column pass)."""
    if sample.nsfw is not None and sample.nsfw.strip().upper() in {v.upper() for v in cfg.drop_nsfw}:
        return Decision.drop(reasons.NSFW_TAG)
    return KEEP


def filter_unsafe_score(sample: Sample, cfg: CurateConfig) -> Decision:
    """LAION's ``punsafe`` is below ``cfg.max_punsafe`` (unknown scores and a None threshold pass)."""
    if cfg.max_punsafe is not None and sample.punsafe is not None and sample.punsafe >= cfg.max_punsafe:
        return Decision.drop(reasons.UNSAFE_SCORE)
    return KEEP


def filter_watermark_score(sample: Sample, cfg: CurateConfig) -> Decision:
    """LAION's ``pwatermark`` is below ``cfg.max_pwatermark`` (off by default)."""
    if cfg.max_pwatermark is not None and sample.pwatermark is not None and sample.pwatermark >= cfg.max_pwatermark:
        return Decision.drop(reasons.WATERMARK_SCORE)
    return KEEP


def filter_caption_length(sample: Sample, cfg: CurateConfig) -> Decision:
    """The caption has at most ``cfg.max_caption_chars`` characters (no model sees longer ones)."""
    if sample.caption is not None and len(sample.caption) > cfg.max_caption_chars:
        return Decision.drop(reasons.CAPTION_TOO_LONG)
    return KEEP


def filter_metadata_resolution(sample: Sample, cfg: CurateConfig) -> Decision:
    """Both metadata sides >= ``cfg.min_side``; unknown sizes pass (confirmed after decoding)."""
    if sample.width is None or sample.height is None:
        return KEEP
    if min(sample.width, sample.height) < cfg.min_side:
        return Decision.drop(reasons.LOW_RESOLUTION_METADATA)
    return KEEP


# --- text stage: the caption's words -------------------------------------------------------------


def caption_text(sample: Sample, cfg: CurateConfig) -> str:
    """The caption as language, keywords and NER see it: its first `MAX_TEXT_CHARS` characters,
    normalised unless ``cfg.normalise`` is off."""
    if not sample.caption:
        return ""
    return normalise_caption(sample.caption) if cfg.normalise else clip_caption(sample.caption)


def filter_language(sample: Sample, cfg: CurateConfig) -> Decision:
    """The caption's language (`language_of`: input column, script, CLD2, function words) is ``cfg.language``."""
    if not sample.caption:
        return Decision.drop(reasons.MISSING_CAPTION)
    code, rule = language_of(caption_text(sample, cfg), sample.language, cfg)
    return Decision(code == cfg.language, None if code == cfg.language else reasons.NOT_ENGLISH, f"language:{rule}")


def filter_person_keywords(sample: Sample, cfg: CurateConfig) -> Decision:
    """The caption contains a people / profession keyword, or a nationality / ethnicity one used as a
    plural noun (``cfg.adjective_lists``; any use when that is empty)."""
    if find_person_keyword(caption_text(sample, cfg), cfg.keyword_lists, cfg.adjective_lists):
        return Decision(True, None, "keywords")
    return Decision.drop(reasons.NO_PERSON_IN_CAPTION)


def filter_person_credit(sample: Sample, cfg: CurateConfig) -> Decision:
    """The caption ends with a credit line "... by <Name>" naming its artist or author (``cfg.use_credit``)."""
    if cfg.use_credit and find_credit(caption_text(sample, cfg)):
        return Decision(True, None, "credit")
    return Decision.drop(reasons.NO_PERSON_IN_CAPTION)


def filter_person_names(sample: Sample, cfg: CurateConfig) -> Decision:
    """The caption holds a capitalised first + last name from the gazetteer whose last word is rare as an
    English word (`idportrait.curate.names.rare_name`; ``cfg.use_name_gazetteer``)."""
    if cfg.use_name_gazetteer and rare_name(caption_text(sample, cfg)):
        return Decision(True, None, "names")
    return Decision.drop(reasons.NO_PERSON_IN_CAPTION)


def filter_person_entities(sample: Sample, cfg: CurateConfig, entities: list[str]) -> Decision:
    """spaCy found at least one PERSON entity (``entities``) in the caption (``cfg.use_ner``)."""
    return Decision(True, None, "ner") if cfg.use_ner and entities else Decision.drop(reasons.NO_PERSON_IN_CAPTION)


_WORDS = re.compile(r"[^\W\d_]+")
MIN_TITLE_SHARE = 0.6
"""Captions with at least this share of capitalised words are Title Case (names hide among them)."""


def sentence_case(text: str) -> str:
    """``text`` in lower case but its first letter: what the second NER pass reads."""
    return text[:1].upper() + text[1:].lower()


def needs_recasing(text: str) -> bool:
    """Title Case ("Benedict Cumberbatch Likes to Get Cheeky") or all-lower-case captions, where the
    case of a word says nothing about whether it is a name; sentence-cased captions gain nothing."""
    words = _WORDS.findall(text)
    if not words:
        return False
    if text == text.lower():
        return True
    return sum(w[0].isupper() for w in words) / len(words) >= MIN_TITLE_SHARE


def filter_person_entities_recased(sample: Sample, cfg: CurateConfig, entities: list[str]) -> Decision:
    """spaCy found a PERSON entity in the sentence-cased caption (``cfg.use_ner_recased``)."""
    if cfg.use_ner and cfg.use_ner_recased and entities:
        return Decision(True, None, "ner_recased")
    return Decision.drop(reasons.NO_PERSON_IN_CAPTION)


CHEAP_PERSON_STEPS: tuple[Filter, ...] = (filter_person_keywords, filter_person_credit, filter_person_names)
"""Person steps without a model, tried in this order before NER."""


def person_without_ner(sample: Sample, cfg: CurateConfig) -> Decision:
    """The first cheap person step that accepts the caption, or the drop."""
    for step in CHEAP_PERSON_STEPS:
        decision = step(sample, cfg)
        if decision.keep:
            return decision
    return Decision.drop(reasons.NO_PERSON_IN_CAPTION)


def filter_person_caption(sample: Sample, cfg: CurateConfig) -> Decision:
    """Keywords, a credit line, a gazetteer name, a PERSON entity, one in the sentence-cased caption: the first
    that accepts (NER on this one caption; the cascade batches it)."""
    decision = person_without_ner(sample, cfg)
    if decision.keep or not cfg.use_ner or not sample.caption:
        return decision
    from idportrait.curate.ner import person_entities

    text = caption_text(sample, cfg)
    decision = filter_person_entities(sample, cfg, person_entities([text])[0])
    if decision.keep or not cfg.use_ner_recased or not needs_recasing(text):
        return decision
    return filter_person_entities_recased(sample, cfg, person_entities([sentence_case(text)])[0])


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


METADATA_FILTERS: tuple[Filter, ...] = (
    filter_readable,
    filter_nsfw_tag,
    filter_unsafe_score,
    filter_watermark_score,
    filter_caption_length,
    filter_metadata_resolution,
)
"""Free checks on the row's columns, first of all."""
TEXT_FILTERS: tuple[Filter, ...] = (*METADATA_FILTERS, filter_language)
"""Every filter before the person-caption filter (keywords, credit, names, then NER)."""
IMAGE_FILTERS: tuple[Filter, ...] = (filter_decoded, filter_image_resolution, filter_face_count, filter_face_size)
FILTERS: tuple[Filter, ...] = (*TEXT_FILTERS, filter_person_caption, *IMAGE_FILTERS)
"""Every filter in cascade order."""


def first_failure(sample: Sample, cfg: CurateConfig, filters: tuple[Filter, ...]) -> Decision:
    """The first failing filter's decision, or the last filter's keep (which names the step that accepted)."""
    decision = KEEP
    for check in filters:
        decision = check(sample, cfg)
        if not decision.keep:
            return decision
    return decision
