"""Drop reasons: the one list of names that stats, reports and tests use, in cascade order.

A failed download is ``download_failed:<detail>``, the detail naming what went wrong (`DOWNLOAD_DETAILS`,
or ``http_<status>`` for an HTTP error reply); `family` maps it back to ``download_failed``.
"""

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

# Details of a failed download (`download_failed:<detail>`), besides http_<status>.
TIMEOUT = "timeout"
DNS_ERROR = "dns_error"
CONNECTION_REFUSED = "connection_refused"
CONNECTION_ERROR = "connection_error"
CONNECTION_RESET = "connection_reset"
TLS_ERROR = "tls_error"
MALFORMED_RESPONSE = "malformed_response"
INCOMPLETE_BODY = "incomplete_body"
EMPTY_BODY = "empty_body"
BODY_TOO_LARGE = "body_too_large"
TOO_MANY_REDIRECTS = "too_many_redirects"
BAD_URL = "bad_url"
NETWORK_ERROR = "network_error"

DOWNLOAD_DETAILS: dict[str, str] = {
    TIMEOUT: "no complete reply within the deadline (connect, headers and body together)",
    DNS_ERROR: "the host name does not resolve",
    CONNECTION_REFUSED: "the host refused the connection",
    CONNECTION_ERROR: "the connection could not be opened",
    CONNECTION_RESET: "the host closed or reset the connection before replying",
    TLS_ERROR: "the TLS handshake or certificate failed",
    MALFORMED_RESPONSE: "the reply is not valid HTTP (bad status line, headers or encoding)",
    INCOMPLETE_BODY: "the body ended before its announced length",
    EMPTY_BODY: "the reply has an empty body",
    BODY_TOO_LARGE: "the body is over the maximum size",
    TOO_MANY_REDIRECTS: "too many redirects",
    BAD_URL: "not an http(s) url",
    NETWORK_ERROR: "another network error",
}
"""Every download failure detail but ``http_<status>`` (an HTTP error reply, e.g. ``http_404``)."""


def download_failed(detail: str) -> str:
    """The drop reason of a download that failed with ``detail`` (``download_failed:http_404``)."""
    return f"{DOWNLOAD_FAILED}:{detail}"


def family(reason: str) -> str:
    """The reason a report row counts ``reason`` under (``download_failed:timeout`` -> ``download_failed``)."""
    return reason.split(":", 1)[0]


def worth_retrying(detail: str | None) -> bool:
    """A timeout or a 5xx reply may pass on a later try; nothing else will."""
    return detail == TIMEOUT or (detail is not None and detail.startswith("http_5"))
