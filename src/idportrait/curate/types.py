"""The records that flow through curation: one `Sample` in, one `Decision` per filter out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from idportrait.faces.types import Face


@dataclass
class Sample:
    """One image-text pair of a LAION-style input shard.

    key: unique id within the dataset (``<shard>/<row>`` when the input has none).
    caption: the alt text, or None when the column is missing, null or not valid UTF-8.
    width, height: metadata size in pixels (None when unknown); confirmed after decoding.
    url: where the image lives (None for shards that carry the bytes).
    image_bytes: encoded image (jpg/png/webp) once available.
    language: the input's LANGUAGE value (LAION-5B multilingual parts), None when absent.
    nsfw, punsafe, pwatermark: LAION's safety tag ("NSFW" / "UNSURE" / "UNLIKELY") and unsafe /
        watermark probabilities in [0, 1], None when absent.
    meta: remaining input columns, passed through to the output json.
    image: decoded RGB uint8 [H, W, 3], set by the image stage (released once the sample is decided).
    faces: detections on `image`, largest first, set by the image stage.
    """

    key: str
    caption: str | None
    width: int | None = None
    height: int | None = None
    url: str | None = None
    image_bytes: bytes | None = None
    language: str | None = None
    nsfw: str | None = None
    punsafe: float | None = None
    pwatermark: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    image: np.ndarray | None = field(default=None, repr=False)
    decoded_size: tuple[int, int] | None = None
    """(height, width) of the decoded image, kept after its pixels are let go; None until it decodes."""
    faces: list[Face] | None = None
    load_error: str | None = None
    """Drop reason decided while reading the row (missing or undecodable caption)."""
    fetch_error: str | None = None
    """Drop reason decided while getting the image bytes (no url, failed download)."""
    steps: dict[str, str] = field(default_factory=dict)
    """Which rule decided the language and which step accepted the person ("language" -> "cld2",
    "person" -> "keywords"), set by the text stage."""


@dataclass(frozen=True)
class Decision:
    """Outcome of one filter: keep, or drop with a named reason (see `reasons`).

    by: the rule or step that decided, where a filter has several ("language:cld2", "keywords",
        "credit", "ner"); None otherwise.
    """

    keep: bool
    reason: str | None = None
    by: str | None = None

    @staticmethod
    def drop(reason: str) -> Decision:
        return Decision(False, reason)


KEEP = Decision(True, None)
