"""Training data: the sample sources, read lazily through one memory-mapped index; image transforms; a seeded,
resumable sample order; the DataLoader.

Sources (``--data``, ``--data-format``)::

    faceid-shards    curated FaceID tar shards or folders of them       -> FaceIDSamples (idportrait.shards)
    faceid6m-jsonl   the FaceID-6M / FaceID-70K release's JSON lines    -> FaceIDSamples (images under --data-root)
    fgid             annotated FGID folders (records.jsonl + files)      -> annotate.schema.record_at (ConsistentID)

`open_training_data` builds (or reuses) the index in ``<output_dir>/data_index/``: 40 bytes per sample in a
memory-mapped file that every rank and worker shares. A dataset item depends on its index only (randomness:
drops, noise, timesteps, lives in the objectives), so batches do not depend on the number of workers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from idportrait.errors import UserError
from idportrait.imageio import decode_image
from idportrait.shards.layout import ROLES, FaceIDSample
from idportrait.shards.reader import FaceIDSamples

DATA_FORMATS = ("auto", "faceid-shards", "faceid6m-jsonl")
"""``--data-format`` of the methods that train on FaceID samples; "auto": JSON-lines files -> faceid6m-jsonl."""
JSONL_SUFFIXES = (".jsonl", ".json", ".txt")
INDEX_FOLDER = "data_index"
MAX_WORKERS = 8


class EpochSampler(torch.utils.data.Sampler[int]):
    """A fresh permutation of ``range(n)`` per epoch from ``seed + epoch``: the order is a pure function of both.

    The training loop sets ``epoch`` before iterating (resume included), so a resumed run sees exactly the
    order an uninterrupted one does. (No ``set_epoch`` method on purpose: accelerate would drive it with its
    own counter, which restarts at 0 after a resume.) The permutation is one int64 array [n], never a list.
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return map(int, torch.randperm(self.n, generator=g).numpy())


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


def resolve_data_format(data: list[Path], data_format: str) -> str:
    """``auto`` -> faceid6m-jsonl when every ``--data`` is a JSON-lines file, else faceid-shards."""
    if data_format not in DATA_FORMATS:
        raise UserError(f"--data-format {data_format}: use one of {', '.join(DATA_FORMATS)}")
    if data_format != "auto":
        return data_format
    jsonl = [Path(p).is_file() and Path(p).suffix in JSONL_SUFFIXES for p in data]
    return "faceid6m-jsonl" if all(jsonl) else "faceid-shards"


def open_training_data(config: Any, data_kind: str, progress: bool = True) -> Any:
    """The run's samples, lazily: `FaceIDSamples` (``data_kind`` "faceid") or the FGID records' index ("fgid").

    Builds the index in ``<output_dir>/data_index`` or reuses it when the sources are unchanged; the shards' and
    files' own index files are made first where missing (a streaming pass with a progress bar).
    """
    from idportrait.shards.index import build_index, find_sources

    folder = Path(config.output_dir) / INDEX_FOLDER
    if data_kind == "fgid":
        from idportrait.annotate.schema import open_records

        return open_records(list(config.data), folder, progress)
    data_format = resolve_data_format(list(config.data), config.data_format)
    if data_format == "faceid6m-jsonl":
        index = build_index(find_sources(config.data, "lines"), "lines", folder, progress=progress)
        return FaceIDSamples(index, Path(config.data_root) if config.data_root else None)
    index = build_index(find_sources(config.data, "tar"), "tar", folder, require=ROLES, progress=progress)
    return FaceIDSamples(index)


def data_fingerprint(data: Any, config: Any) -> dict[str, Any]:
    """The index fingerprint a checkpoint keeps (sources, sizes, sample count; the data root where one is used)."""
    fingerprint = (data.index if isinstance(data, FaceIDSamples) else data).fingerprint()
    if getattr(data, "root", None) is not None:
        fingerprint["data_root"] = str(Path(config.data_root).resolve())
    return fingerprint


def face_embedding(record: dict[str, Any]) -> torch.Tensor:
    """The largest face's L2-normalised embedding, float [D]."""
    emb = torch.as_tensor(np.asarray(record["faces"][0]["embedding"], dtype=np.float32))
    return emb / emb.norm().clamp_min(1e-12)


def sample_face(sample: FaceIDSample) -> dict[str, Any]:
    """The sample's largest face (bbox, kps, embedding); `UserError` when it has none with an embedding."""
    faces = sample.record.get("faces") or []
    if not faces or faces[0].get("embedding") is None:
        raise UserError(
            f"sample {sample.key!r} has no face embedding (curate with an embedding backend)", sample.source
        )
    return faces[0]


EMBEDDING_BACKENDS = {512: "insightface (ArcFace)", 128: "dlib"}


def check_embedding_size(samples: FaceIDSamples, expected: int, method: str) -> None:
    """`UserError` when the first sample's face embedding is not ``expected``-D (dlib curates 128-D ones)."""
    sample = samples[0]
    size = len(sample_face(sample)["embedding"])
    if size != expected:
        backend = EMBEDDING_BACKENDS.get(size, "another backend")
        raise UserError(
            f"sample {sample.key!r}: its face embedding is {size}-D ({backend}); {method} trains on {expected}-D "
            "ArcFace embeddings: curate with --detector insightface:antelopev2 (or insightface:buffalo_l)",
            sample.source,
        )


def decode_sample_image(sample: FaceIDSample) -> Image.Image:
    """The RGB image of a sample (decompression-bomb guarded)."""
    return decode_image(sample.image, name=sample.name)


def default_num_workers(local_processes: int) -> int:
    """DataLoader workers per process: this machine's cores shared by its processes, one kept for the process
    itself, at most `MAX_WORKERS`."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(0, min(MAX_WORKERS, cores // max(local_processes, 1) - 1))


def make_loader(
    dataset: torch.utils.data.Dataset,
    sampler: EpochSampler,
    batch_size: int,
    collate: Any,
    num_workers: int,
    pin_memory: bool,
    seed: int,
) -> torch.utils.data.DataLoader:
    """The training DataLoader: full batches only; workers decode and persist across epochs, 4 batches ahead."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collate,
        num_workers=num_workers,
        drop_last=True,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        prefetch_factor=4 if num_workers > 0 else None,
        generator=torch.Generator().manual_seed(seed),  # worker seeds: keeps the global RNG untouched
    )


def worker_error(err: UserError) -> UserError:
    """A user error raised in a DataLoader worker reaches the main process with the worker's traceback in its
    message; this is the same error with its own line only."""
    text = str(err)
    if "Original Traceback" not in text:
        return err
    last = text.rstrip().splitlines()[-1]
    return type(err)(last.removeprefix(f"{type(err).__module__}.{type(err).__qualname__}: "))
