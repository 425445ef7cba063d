"""File access through fsspec, so that shards, their index files and the other curation outputs may live on local
disks or object storage.

Writes are atomic (a temporary name, then a move); reads of a sample are positioned range reads
(``cat_file(path, start, end)``: ``pread`` on a local disk, an HTTP range request on a bucket).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from idportrait.errors import disk_full_error, find_disk_full


def filesystem(path: str) -> tuple[Any, str]:
    """(fsspec filesystem, path within it) of a local path or URL; fsspec caches the filesystem instances."""
    from fsspec.core import url_to_fs

    return url_to_fs(str(path))


@contextmanager
def atomic_output(path: str) -> Iterator[IO[bytes]]:
    """Write to ``<path>.<random>.tmp``, then move it onto ``path``; on any error the temporary file goes, and a
    full disk becomes one `DiskFullError` naming the folder."""
    fs, real = filesystem(path)
    fs.makedirs(real.rsplit("/", 1)[0], exist_ok=True)
    tmp = f"{real}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with fs.open(tmp, "wb") as f:
            yield f
        fs.mv(tmp, real)
    except BaseException as err:
        if fs.exists(tmp):
            fs.rm(tmp)
        if isinstance(err, Exception) and find_disk_full(err) is not None:
            raise disk_full_error(err, path) from None
        raise


def read_range(path: str, start: int, size: int) -> bytes:
    """``size`` bytes of ``path`` from byte ``start`` (fewer only when the file is shorter)."""
    fs, real = filesystem(path)
    return fs.cat_file(real, start=start, end=start + size)


def read_file(path: str) -> bytes:
    """The whole of ``path``."""
    fs, real = filesystem(path)
    return fs.cat_file(real)


def file_size(path: str) -> int | None:
    """Size of ``path`` in bytes, or None when it is not a file."""
    fs, real = filesystem(path)
    try:
        info = fs.info(real)
    except FileNotFoundError:
        return None
    return int(info["size"]) if info.get("type") == "file" else None
