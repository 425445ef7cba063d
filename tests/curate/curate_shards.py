"""Tiny parquet input shards for runner tests."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq


def small_shard(path: Path, rows: list[tuple[str, str | None, str | None]]) -> None:
    """A parquet shard of (caption, sample photo or None, url or None) rows, keys ``<stem>-<i>``."""
    import io

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
