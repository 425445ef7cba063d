"""Curated FaceID shards written by the training tests."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image


def write_faceid_shard(path: Path, n: int, seed: int = 0, dim: int = 512) -> Path:
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
                        "embedding": rng.standard_normal(dim).tolist(),
                    }
                ]
            }
            for ext, data in (("jpg", buf.getvalue()), ("txt", f"a photo of person {i}".encode()),
                              ("json", json.dumps(meta).encode())):  # fmt: skip
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def write_release_set(root: Path, n: int, seed: int = 0) -> Path:
    """``n`` samples in the FaceID-6M release's layout under ``root``: photos, .npy embeddings (one of them
    [1, 512]) and ``train.jsonl`` with paths relative to ``root``. Returns the JSON-lines file."""
    rng = np.random.default_rng(seed)
    (root / "laion_1024" / "images_part0").mkdir(parents=True, exist_ok=True)
    (root / "features" / "images_part0").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        image = f"laion_1024/images_part0/{i:06d}.jpg"
        Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(root / image, format="JPEG")
        feature = f"features/images_part0/{i:06d}.npy"
        np.save(root / feature, rng.standard_normal((1, 512) if i == 0 else 512).astype(np.float32))
        lines.append({"image_file": image, "additional_feature": f"a photo of person {i}",
                      "bbox": [8.0, 8.0, 32.0, 40.0], "landmarks": [[15, 20], [25, 20], [20, 26], [16, 32], [24, 32]],
                      "insightface_feature_file": feature})  # fmt: skip
    path = root / "train.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path
