"""Tiny input shards for runner tests: parquet shards of sample photos, tars cut off mid-member."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pyarrow.parquet as pq


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
    members = io.BytesIO()
    with tarfile.open(fileobj=members, mode="w") as tar:
        for i, data in enumerate(captions):
            info = tarfile.TarInfo(f"{i:03d}.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(members.getvalue()[:keep])
