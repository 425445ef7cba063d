"""Training data: the two sample sources, image transforms, and a resumable, seeded sample order.

Sources::

    curated FaceID shards (*.tar: {key}.jpg, {key}.txt, {key}.json with faces[0].embedding)  -> read_faceid_shards
    annotated FGID folder (records.jsonl + image/parsing/masks files, see annotate.schema)    -> read_fgid_records

Each source yields plain dicts; the method's dataset (`training.consistentid`, `training.ipadapter_faceid`)
turns one into tensors. Randomness (drops, noise, timesteps) lives in the objectives, not here, so that
a dataset item depends on its index only.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from idportrait.errors import UserError
from idportrait.imageio import decode_image


class EpochSampler(torch.utils.data.Sampler[int]):
    """A fresh permutation of ``range(n)`` per epoch from ``seed + epoch``: the order is a pure function of both.

    The training loop sets ``epoch`` before iterating (resume included), so a resumed run sees exactly the
    order an uninterrupted one does. (No ``set_epoch`` method on purpose: accelerate would drive it with its
    own counter, which restarts at 0 after a resume.)
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())


def centre_square(width: int, height: int) -> tuple[int, int, int]:
    """The centred square crop of a ``width`` x ``height`` image: (left, top, side) in pixels."""
    side = min(width, height)
    return (width - side) // 2, (height - side) // 2, side


def square_resize(image: Image.Image, size: int) -> Image.Image:
    """Centre crop to a square, then resize to ``size`` x ``size`` (bicubic)."""
    left, top, s = centre_square(*image.size)
    return image.crop((left, top, left + s, top + s)).resize((size, size), Image.BICUBIC)


def to_pixel_values(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> float [3, H, W] in [-1, 1] (what the VAE encodes)."""
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1.0)
    return x.permute(2, 0, 1).contiguous()


def read_faceid_shards(paths: list[Path]) -> list[dict[str, Any]]:
    """Every sample of curated FaceID webdataset shards, in shard/member order.

    ``paths`` are ``.tar`` files or folders of them. Returns dicts ``{"key", "jpg": bytes, "txt": str,
    "json": dict, "source": "shard.tar"}``; samples without an image, a caption or a face embedding are
    refused with a `UserError` naming the shard and key.
    """
    samples: list[dict[str, Any]] = []
    shards = [shard for p in paths for shard in (sorted(p.glob("*.tar")) if p.is_dir() else [p])]
    for path in shards:
        if not path.is_file():
            raise UserError("shard not found", path)
        groups: dict[str, dict[str, Any]] = {}
        with tarfile.open(path) as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, _, ext = member.name.partition(".")
                data = tar.extractfile(member).read()
                groups.setdefault(key, {"key": key, "source": path.name})[ext] = data
        for key, sample in groups.items():
            missing = [ext for ext in ("jpg", "txt", "json") if ext not in sample]
            if missing:
                raise UserError(f"sample {key!r} lacks {', '.join(missing)}", path)
            sample["txt"] = sample["txt"].decode("utf-8")
            sample["json"] = json.loads(sample["json"])
            faces = sample["json"].get("faces") or []
            if not faces or faces[0].get("embedding") is None:
                raise UserError(f"sample {key!r} has no face embedding (curate with an embedding backend)", path)
            samples.append(sample)
    if not samples:
        raise UserError(f"no samples in {', '.join(str(p) for p in paths)}")
    return samples


def face_embedding(sample_json: dict[str, Any]) -> torch.Tensor:
    """The largest face's L2-normalised embedding, float [D]."""
    emb = torch.tensor(sample_json["faces"][0]["embedding"], dtype=torch.float32)
    return emb / emb.norm().clamp_min(1e-12)


def read_fgid_records(root: Path) -> list[dict[str, Any]]:
    """The records of an annotated FGID folder (``records.jsonl``), with file paths made absolute."""
    from idportrait.annotate.schema import read_records

    records = read_records(root)
    if not records:
        raise UserError("no annotated records (run `idportrait annotate` first)", root / "records.jsonl")
    return records


def decode_sample_image(sample: dict[str, Any]) -> Image.Image:
    """The RGB image of a shard sample (decompression-bomb guarded)."""
    return decode_image(sample["jpg"], name=f"{sample['source']}:{sample['key']}")
