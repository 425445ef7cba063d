"""Drop reasons: the one list of names that stats, reports and tests use, in cascade order."""

from __future__ import annotations

# Read stage (decided while reading a row, before any filter runs).
MISSING_CAPTION = "missing_caption"
CAPTION_NOT_UTF8 = "caption_not_utf8"
# Metadata stage: free checks on LAION's columns and the caption's length, before any model.
NSFW_TAG = "nsfw_tag"
UNSAFE_SCORE = "unsafe_score"
WATERMARK_SCORE = "watermark_score"
CAPTION_TOO_LONG = "caption_too_long"
# Text stage, cheapest first.
LOW_RESOLUTION_METADATA = "low_resolution_metadata"
NOT_ENGLISH = "not_english"
NO_PERSON_IN_CAPTION = "no_person_in_caption"
# Image stage (after the bytes are fetched and decoded).
NO_IMAGE = "no_image"
DOWNLOAD_FAILED = "download_failed"
BROKEN_IMAGE = "broken_image"
LOW_RESOLUTION = "low_resolution"
NO_FACE = "no_face"
TOO_MANY_FACES = "too_many_faces"
FACE_TOO_SMALL = "face_too_small"

DESCRIPTIONS: dict[str, str] = {
    MISSING_CAPTION: "caption column missing or empty",
    CAPTION_NOT_UTF8: "caption bytes are not valid UTF-8",
    NSFW_TAG: "NSFW column holds a dropped tag (default: NSFW)",
    UNSAFE_SCORE: "punsafe at or above the threshold",
    WATERMARK_SCORE: "pwatermark at or above the threshold",
    CAPTION_TOO_LONG: "caption longer than the maximum length",
    LOW_RESOLUTION_METADATA: "width/height columns below the minimum side",
    NOT_ENGLISH: "caption language is not English",
    NO_PERSON_IN_CAPTION: "caption names no person (keywords, credit line, name gazetteer, NER)",
    NO_IMAGE: "no image bytes and no url",
    DOWNLOAD_FAILED: "url unreachable or returned an error",
    BROKEN_IMAGE: "image bytes do not decode",
    LOW_RESOLUTION: "decoded image below the minimum side",
    NO_FACE: "no face detected above the score threshold",
    TOO_MANY_FACES: "more faces than allowed",
    FACE_TOO_SMALL: "largest face below the minimum area fraction",
}

ORDER: tuple[str, ...] = tuple(DESCRIPTIONS)
"""Every reason in the order a sample meets it; reports list counts in this order."""
