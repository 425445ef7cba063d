"""Shards and JSON-lines files for the shards tests, and the eager reference reader the lazy one must equal."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def jpeg(seed: int, size: tuple[int, int] = (40, 48)) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def faceid_members(i: int, dim: int = 512) -> dict[str, bytes]:
    """A FaceID sample's members by role: a JPEG, a caption, a record with one face."""
    rng = np.random.default_rng(i)
    face = {"bbox": [8.0, 8.0, 32.0, 40.0], "kps": [[15.0, 20.0], [25.0, 20.0], [20.0, 26.0], [16.0, 32.0],
            [24.0, 32.0]], "score": 0.9, "embedding": rng.standard_normal(dim).tolist()}  # fmt: skip
    record = {"key": f"k{i}", "caption": f"a photo of person {i}", "faces": [face]}
    return {"image": jpeg(i), "text": f"a photo of person {i}".encode(), "json": json.dumps(record).encode()}


def eager_samples(shards: list[Path]) -> list[dict[str, Any]]:
    """Every sample of ``shards`` read whole with tarfile, members grouped by key: the reference to compare with."""
    samples = []
    for shard in shards:
        with tarfile.open(shard) as tar:
            groups: dict[str, dict[str, Any]] = {}
            for member in tar:
                key, _, ext = member.name.partition(".")
                groups.setdefault(key, {"key": key, "source": shard.name})[ext] = tar.extractfile(member).read()
        for sample in groups.values():
            samples.append({**sample, "txt": sample["txt"].decode(), "json": json.loads(sample["json"])})
    return samples
