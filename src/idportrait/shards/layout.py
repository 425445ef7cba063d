"""The FaceID shard layout: webdataset tars of three members per sample, the sample's JSON record, and
`FaceIDSample`, one sample as training reads it (from a shard, or from the FaceID-6M release's files).

    <stem>.jpg    the image (the downloaded JPEG bytes, or the decoded image re-encoded at quality 95)
    <stem>.txt    the caption, UTF-8
    <stem>.json   the record: {"key", "caption", "url", "width", "height" (px), "face_ratio" (largest face
                  bbox area / image area), "faces": [{"bbox": [4] px, "kps": [5][2] px, "score",
                  "embedding": [D] raw (512 ArcFace, 128 dlib) or null}], "source" (input shard), "meta"}

A member name splits at the first dot of its base name (webdataset's rule): ``a/b.c.json`` is key ``a/b``,
extension ``c.json``. A sample's members are consecutive in the tar. Other tools' shards (img2dataset) follow
the same rule with other image extensions; an index records the members it knows by their role.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Any

from idportrait.faces.types import Face

ROLES = ("image", "text", "json")
"""The members a FaceID sample has, in the order the writer puts them in the tar."""

ROLE_EXTENSIONS = {"image": ("jpg", "jpeg", "png", "webp"), "text": ("txt",), "json": ("json",)}
"""Member extensions (lower case) of each role; the first of a role is the one the writer uses."""

EXTENSION_ROLE = {ext: role for role, exts in ROLE_EXTENSIONS.items() for ext in exts}


@dataclass
class FaceIDSample:
    """One sample: ``record["faces"][0]`` holds the largest face (bbox [4], kps [5][2] px, embedding [D])."""

    key: str
    source: str
    image: bytes
    caption: str
    record: dict[str, Any]

    @property
    def name(self) -> str:
        """``<source file name>:<key>``, how messages and training logs name the sample."""
        return f"{self.source}:{self.key}"


def split_member(name: str) -> tuple[str, str] | None:
    """Member name -> (key, lower-case extension), or None for a name without an extension."""
    directory, base = posixpath.split(name)
    if "." not in base:
        return None
    stem, ext = base.split(".", 1)
    return posixpath.join(directory, stem), ext.lower()


def safe_key(key: str) -> str:
    """A member stem that stays one sample: no dots or slashes (they would split it), nothing exotic."""
    return re.sub(r"[^\w\-]", "_", key)


def member_names(stem: str) -> dict[str, str]:
    """Role -> member name of a FaceID sample written under ``stem``."""
    return {role: f"{stem}.{ROLE_EXTENSIONS[role][0]}" for role in ROLES}


def face_record(face: Face) -> dict[str, Any]:
    """`Face` -> the JSON of one face in a record (pixel values rounded to 0.01, full-precision embedding)."""
    return {
        "bbox": [round(float(v), 2) for v in face.bbox],
        "kps": [[round(float(x), 2), round(float(y), 2)] for x, y in face.kps],
        "score": round(float(face.score), 4),
        "embedding": None if face.embedding is None else [float(v) for v in face.embedding],
    }


def span_key(span: bytes) -> str:
    """The key of the sample whose tar bytes (headers and members, see `index_file`) are ``span``."""
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(span), mode="r:") as tar:
        first = tar.next()
    parts = split_member(first.name) if first is not None else None
    if parts is None:
        raise ValueError("no sample member at this offset")
    return parts[0]
