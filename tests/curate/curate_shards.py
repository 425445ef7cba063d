"""Tiny input shards for runner tests: parquet shards of sample photos, tars cut off mid-member."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow.parquet as pq

from plain_tar import write_plain_tar


def small_shard(path: Path, rows: list[tuple[str, str | None, str | None]]) -> None:
    """A parquet shard of (caption, sample photo or None, url or None) rows, keys ``<stem>-<i>``."""
    import pyarrow as pa

    from idportrait.curate.sample import PHOTOS

    def jpeg(photo):
        buf = io.BytesIO()
        PHOTOS[photo]().save(buf, format="JPEG")
        return buf.getvalue()

    table = [
        {"key": f"{path.stem}-{i}", "caption": c, "jpg": jpeg(p) if p else None, "url": u}
        for i, (c, p, u) in enumerate(rows)
    ]
    pq.write_table(pa.Table.from_pylist(table), path)


def truncated_tar(path: Path, captions: list[bytes], keep: int) -> None:
    """A tar of ``captions`` as members ``000.txt``, ``001.txt``, ... cut off after its first ``keep`` bytes."""
    write_plain_tar(path, [(f"{i:03d}.txt", data) for i, data in enumerate(captions)])
    path.write_bytes(path.read_bytes()[:keep])
