"""Curated FaceID shards written by the training tests."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image


def write_faceid_shard(path: Path, n: int, seed: int = 0) -> Path:
    """A curated-FaceID-style shard: {key}.jpg, {key}.txt, {key}.json with faces[0] bbox/kps/score/embedding."""
    rng = np.random.default_rng(seed)
    with tarfile.open(path, "w") as tar:
        for i in range(n):
            key = f"{i:06d}"
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(buf, format="JPEG")
            meta = {
                "faces": [
                    {
                        "bbox": [8.0, 8.0, 32.0, 40.0],
                        "kps": [[15.0, 20.0], [25.0, 20.0], [20.0, 26.0], [16.0, 32.0], [24.0, 32.0]],
                        "score": 0.9,
                        "embedding": rng.standard_normal(512).tolist(),
                    }
                ]
            }
            for ext, data in (("jpg", buf.getvalue()), ("txt", f"a photo of person {i}".encode()),
                              ("json", json.dumps(meta).encode())):  # fmt: skip
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path
