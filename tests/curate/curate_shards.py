"""Tiny parquet and tar input shards for the curate tests."""

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


def tar_bytes(members: dict[str, bytes]) -> bytes:
    """A tar archive of ``members`` (name -> data), in that order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
