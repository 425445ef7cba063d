"""Read one FaceID sample when it is asked for: its entry from the memory-mapped index, its bytes by one range read.

    FaceIDSamples(index)[i] -> FaceIDSample(key, source, image bytes, caption, record)

Tar samples are sliced from their span by the entry's member offsets; JSON-lines samples (the FaceID-6M release)
are turned into the same record by `faceid6m`. Nothing is decoded here: the image stays JPEG/PNG bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from idportrait.errors import UserError
from idportrait.shards.faceid6m import release_sample
from idportrait.shards.index import SampleIndex
from idportrait.shards.layout import FaceIDSample, span_key


def member(span: bytes, entry: np.void, role: str) -> bytes:
    start = int(entry[f"{role}_start"])
    return span[start : start + int(entry[f"{role}_size"])]


def tar_sample(index: SampleIndex, i: int) -> FaceIDSample:
    """Sample ``i`` of an index of tar shards."""
    entry, span = index.read(i)
    source = index.source(entry).path
    name = Path(source).name
    try:
        key = span_key(span)
    except (ValueError, OSError) as err:
        raise UserError(f"no sample at byte {int(entry['offset'])} (was the shard rewritten? {err})", source) from None
    try:
        caption = member(span, entry, "text").decode("utf-8")
        record = json.loads(member(span, entry, "json"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"sample {key!r}: unreadable caption or record ({err})", source) from None
    return FaceIDSample(key, name, member(span, entry, "image"), caption, record)


class FaceIDSamples:
    """The samples of an index, read lazily: tar shards, or the release's JSON lines with images under ``root``."""

    def __init__(self, index: SampleIndex, root: Path | None = None) -> None:
        self.index = index
        self.root = root

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> FaceIDSample:
        if self.index.kind == "tar":
            return tar_sample(self.index, i)
        return release_sample(self.index, i, self.root)
