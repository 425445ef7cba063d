"""The released FaceID-6M / FaceID-70K training lists: JSON lines, one sample per line, files under a data root.

    {"image_file": "laion_1024/00001.jpg",                     the photo ("file_name" in some InstantID scripts)
     "additional_feature": "a man with glasses and a tie ...",  the caption
     "bbox": [x1, y1, x2, y2], "landmarks": [[x, y] x 5],       pixels of the photo
     "insightface_feature_file": "features/00001.npy"}          float32 [512] (or [1, 512]) antelopev2 embedding

Relative paths are under the data root (``--data-root``; by default the JSON-lines file's folder), absolute ones
are used as they are. A sample reads its line, its photo and its ``.npy`` only when the loader asks for it, and
becomes the same `FaceIDSample` as a curated shard's (the landmarks are its face's ``kps``).
"""

from __future__ import annotations

import io
import json
import posixpath
from pathlib import Path
from typing import Any

import numpy as np

from idportrait.errors import UserError
from idportrait.shards.files import read_file
from idportrait.shards.index import SampleIndex
from idportrait.shards.layout import FaceIDSample

IMAGE_FIELDS = ("image_file", "file_name")
CAPTION_FIELD = "additional_feature"
EMBEDDING_FIELD = "insightface_feature_file"
FIELDS = ("bbox", "landmarks", CAPTION_FIELD, EMBEDDING_FIELD)


def release_sample(index: SampleIndex, i: int, root: Path | None) -> FaceIDSample:
    """Sample ``i`` of an index of release JSON-lines files; ``root``: the data root (None: each file's folder)."""
    entry, line = index.read(i)
    source = index.source(entry).path
    where = f"line at byte {int(entry['offset'])}"
    try:
        item = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{where}: not JSON ({err})", source) from None
    image_field = next((f for f in IMAGE_FIELDS if f in item), None) if isinstance(item, dict) else None
    missing = [f for f in FIELDS if f not in item] if image_field else ["image_file"]
    if missing:
        raise UserError(f"{where}: no {', '.join(missing)} (a FaceID-6M training line has {IMAGE_FIELDS[0]}, "
                        f"{', '.join(FIELDS)})", source)  # fmt: skip
    base = str(root) if root is not None else posixpath.dirname(source)
    image_path = posixpath.join(base, item[image_field])
    embedding = read_embedding(posixpath.join(base, item[EMBEDDING_FIELD]))
    face = {"bbox": item["bbox"], "kps": item["landmarks"], "score": None, "embedding": embedding}
    record: dict[str, Any] = {"key": item[image_field], "caption": item[CAPTION_FIELD], "faces": [face]}
    return FaceIDSample(item[image_field], Path(source).name, _read(image_path), item[CAPTION_FIELD], record)


def read_embedding(path: str) -> np.ndarray:
    """A ``.npy`` face embedding as float32 [D] (no pickles: object arrays are refused)."""
    if not path.endswith(".npy"):
        raise UserError("not a .npy embedding (the release's insightface_feature_file is a .npy array)", path)
    try:
        array = np.load(io.BytesIO(_read(path)), allow_pickle=False)
    except ValueError as err:
        raise UserError(f"not a numeric .npy array ({err})", path) from None
    return np.asarray(array, dtype=np.float32).reshape(-1)


def _read(path: str) -> bytes:
    try:
        return read_file(path)
    except FileNotFoundError:
        raise UserError("not found (is --data-root the folder the release was unpacked in?)", path) from None
