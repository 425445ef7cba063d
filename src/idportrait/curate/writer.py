"""Outputs of one shard, each written atomically (temp name, then rename), the stats file last.

    <out>/shards/<name>.tar          webdataset: <key>.jpg, <key>.txt, <key>.json (faces: bbox, kps,
                                     score, embedding), kept samples only (`idportrait.shards.layout`)
    <out>/shards/<name>.tar.idx.arrow  each kept sample's member offsets, what training reads it by
                                     (`idportrait.shards.writer`, written right after the tar)
    <out>/index/<name>.parquet       one row per kept sample (key, shard, caption, size, faces...)
    <out>/decisions/<name>.parquet   one row per input sample (key, reason, sizes, face ratio)
    <out>/stats/<name>.json          counts per drop reason and per text step; marks the shard done
    <out>/failures/<name>.json       only for a shard that could not be read: the error (see runner)

A shard without its stats file is unfinished: its other files are rewritten on the next run, so a
killed job neither loses nor duplicates samples.
"""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

import numpy as np

from idportrait.curate.config import CurateConfig
from idportrait.curate.filters import confident_faces, largest_face_ratio
from idportrait.curate.types import Decision, Sample
from idportrait.faces.types import Face
from idportrait.shards.files import atomic_output, filesystem
from idportrait.shards.layout import face_record, safe_key
from idportrait.shards.writer import write_shard

if TYPE_CHECKING:
    import pyarrow as pa

STATS_DIR, SHARDS_DIR, INDEX_DIR, DECISIONS_DIR = "stats", "shards", "index", "decisions"
FAILURES_DIR = "failures"


def output_path(out: str, kind: str, name: str) -> str:
    suffix = {STATS_DIR: ".json", FAILURES_DIR: ".json", SHARDS_DIR: ".tar"}.get(kind, ".parquet")
    return f"{out.rstrip('/')}/{kind}/{name}{suffix}"


def is_jpeg(data: bytes | None) -> bool:
    """Whether ``data`` are JPEG bytes, which a kept sample's tar member takes as they are (`_jpeg_bytes`)."""
    return data is not None and data[:3] == b"\xff\xd8\xff"


def _jpeg_bytes(sample: Sample) -> bytes:
    """The original bytes when already JPEG, else the decoded image re-encoded (quality 95)."""
    if is_jpeg(sample.image_bytes):
        return sample.image_bytes
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(sample.image).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


class ShardWriter:
    """Accumulates one shard's decisions and kept samples (in memory); `close` writes everything."""

    def __init__(self, out: str, name: str, source: str, cfg: CurateConfig) -> None:
        self.out, self.name, self.source, self.cfg = out, name, source, cfg
        self.members: list[tuple[str, dict[str, bytes]]] = []
        self.index_rows: list[dict[str, Any]] = []
        self.decision_rows: list[dict[str, Any]] = []

    def add(self, sample: Sample, decision: Decision) -> None:
        faces = confident_faces(sample.faces, self.cfg.det_score) if sample.faces is not None else None
        height, width = sample.decoded_size or (sample.height, sample.width)
        ratio = largest_face_ratio(faces, width, height) if faces is not None else None
        self.decision_rows.append(
            {
                "key": sample.key,
                "keep": decision.keep,
                "reason": decision.reason,
                "width": width,
                "height": height,
                "decoded": sample.decoded_size is not None,
                "num_faces": None if faces is None else len(faces),
                "face_ratio": ratio,
                "language_rule": sample.steps.get("language"),
                "person_step": sample.steps.get("person"),
            }
        )
        if decision.keep:
            self._add_kept(sample, faces or [], width, height, ratio)

    def _add_kept(self, sample: Sample, faces: list[Face], width: int, height: int, ratio: float) -> None:
        stem = safe_key(sample.key)
        record = {
            "key": sample.key,
            "caption": sample.caption,
            "url": sample.url,
            "width": width,
            "height": height,
            "face_ratio": ratio,
            "faces": [face_record(f) for f in faces],
            "source": self.source,
            "meta": sample.meta,
        }
        members = {
            "image": _jpeg_bytes(sample),
            "text": sample.caption.encode("utf-8"),
            "json": json.dumps(record, ensure_ascii=False).encode("utf-8"),
        }
        self.members.append((stem, members))
        embedding = faces[0].normed_embedding if faces and faces[0].embedding is not None else None
        self.index_rows.append(
            {
                "key": sample.key,
                "shard": f"{self.name}.tar",
                "caption": sample.caption,
                "url": sample.url,
                "width": width,
                "height": height,
                "num_faces": len(faces),
                "face_ratio": ratio,
                "det_score": faces[0].score if faces else None,
                "embedding": None if embedding is None else np.asarray(embedding, np.float32).tolist(),
            }
        )

    def close(self, stats: dict[str, Any]) -> None:
        """Write tar (with its index file), index, decisions, then the stats file (the done marker)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        write_shard(output_path(self.out, SHARDS_DIR, self.name), self.members)
        for kind, rows, schema in (
            (INDEX_DIR, self.index_rows, index_schema),
            (DECISIONS_DIR, self.decision_rows, decisions_schema),
        ):
            with atomic_output(output_path(self.out, kind, self.name)) as f:
                pq.write_table(pa.Table.from_pylist(rows, schema=schema()), f)
        with atomic_output(output_path(self.out, STATS_DIR, self.name)) as f:
            f.write(json.dumps(stats, indent=2, ensure_ascii=False).encode("utf-8"))


def index_schema() -> pa.Schema:
    """Columns of ``index/<shard>.parquet`` (one row per kept sample; embedding L2-normalised [D])."""
    import pyarrow as pa

    return pa.schema(
        [
            ("key", pa.string()),
            ("shard", pa.string()),
            ("caption", pa.string()),
            ("url", pa.string()),
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("num_faces", pa.int32()),
            ("face_ratio", pa.float32()),
            ("det_score", pa.float32()),
            ("embedding", pa.list_(pa.float32())),
        ]
    )


def decisions_schema() -> pa.Schema:
    """Columns of ``decisions/<shard>.parquet`` (one row per input sample)."""
    import pyarrow as pa

    return pa.schema(
        [
            ("key", pa.string()),
            ("keep", pa.bool_()),
            ("reason", pa.string()),
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("decoded", pa.bool_()),
            ("num_faces", pa.int32()),
            ("face_ratio", pa.float32()),
            ("language_rule", pa.string()),
            ("person_step", pa.string()),
        ]
    )


def load_stats(out: str) -> list[dict[str, Any]]:
    """Stats of every finished shard under ``out``, sorted by shard name.

    A stats file that is not a stats record (cut short, edited, empty) marks no shard as finished:
    it is left out here, and the runner curates that shard again.
    """
    fs, root = filesystem(f"{out.rstrip('/')}/{STATS_DIR}")
    if not fs.exists(root):
        return []
    stats = []
    for path in sorted(fs.glob(f"{root}/*.json")):
        with fs.open(path, "rb") as f:
            record = _stats_record(f.read())
        if record is not None:
            stats.append(record)
    return stats


def _stats_record(data: bytes) -> dict[str, Any] | None:
    """The stats record in ``data``, or None when it is not one."""
    try:
        record = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("shard"), str):
        return None
    counts_ok = all(isinstance(record.get(k), int) for k in ("samples", "kept"))
    return record if counts_ok and isinstance(record.get("dropped"), dict) else None
