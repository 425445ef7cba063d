"""Fetch image bytes for samples that carry only a url (stdlib HTTP, a small thread pool)."""

from __future__ import annotations

import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from idportrait.curate import reasons
from idportrait.curate.types import Sample

USER_AGENT = "idportrait-curate/0.1 (+FaceID dataset curation)"
MAX_DOWNLOAD_BYTES = 32 * 1024 * 1024


def fetch_url(url: str, timeout: float = 10.0, max_bytes: int = MAX_DOWNLOAD_BYTES) -> bytes | None:
    """The body of ``url``, or None on any network/HTTP error, empty body or body over ``max_bytes``."""
    try:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(max_bytes + 1)
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return body if 0 < len(body) <= max_bytes else None


def fetch_images(samples: list[Sample], threads: int = 16, timeout: float = 10.0) -> None:
    """Fill ``image_bytes`` of samples that have none, in place; set ``fetch_error`` where that fails."""
    todo = [s for s in samples if s.image_bytes is None]
    for sample in todo:
        if not sample.url:
            sample.fetch_error = reasons.NO_IMAGE
    todo = [s for s in todo if s.url]
    if not todo:
        return
    with ThreadPoolExecutor(max_workers=min(threads, len(todo))) as pool:
        bodies = list(pool.map(lambda s: fetch_url(s.url, timeout), todo))
    for sample, body in zip(todo, bodies, strict=True):
        if body is None:
            sample.fetch_error = reasons.DOWNLOAD_FAILED
        else:
            sample.image_bytes = body
