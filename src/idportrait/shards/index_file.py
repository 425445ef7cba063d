"""Where each sample of one source file lives: one 40-byte entry per sample, kept in an index file beside it.

Entry (`ENTRY`, little-endian)::

    source        u4   which source of a `SampleIndex` (0 in an index file, which covers one source)
    offset        u8   byte offset of the sample: its first tar header, or the first byte of its line
    size          u4   bytes from ``offset`` to the end of its last member's data / of its line (without ``\\n``)
    <role>_start  u4   start of the image / text / json member's data, relative to ``offset`` (0: no such member)
    <role>_size   u4   its size in bytes

Sources are tar shards (a sample = the consecutive members of one key, see `layout`) or JSON-lines files
(a sample = one non-blank line; an unterminated last line counts only when it is complete JSON, so the torn
line of a killed writer is left out). The index file of ``x.tar`` is ``x.tar.idx.arrow``: an Arrow IPC file
with one column per entry field and the source's size in its metadata, so a changed source is noticed.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from typing import IO, Any

import numpy as np

from idportrait.errors import UserError
from idportrait.shards.files import atomic_output, file_size, filesystem
from idportrait.shards.layout import EXTENSION_ROLE, ROLES, split_member

ENTRY = np.dtype(
    [("source", "<u4"), ("offset", "<u8"), ("size", "<u4")]
    + [(f"{role}_{part}", "<u4") for role in ROLES for part in ("start", "size")]
)
INDEX_SUFFIX = ".idx.arrow"
FORMAT = "idportrait-sample-index"
VERSION = "1"
KINDS = ("tar", "lines")
CHUNK = 65536
"""Entries per Arrow record batch, and per chunk of a tar scan."""
WHITESPACE = np.frombuffer(b" \t\r\n\f\v", np.uint8)


def index_file_path(source: str) -> str:
    return f"{source}{INDEX_SUFFIX}"


class EntryChunks:
    """Entries filled one at a time and handed out in chunks of `CHUNK` (a tar scan never holds a whole shard)."""

    def __init__(self) -> None:
        self.buffer = np.zeros(CHUNK, ENTRY)
        self.n = 0

    def next_row(self) -> np.void:
        """A zeroed entry to fill; `commit` it once filled."""
        return self.buffer[self.n]

    def commit(self) -> bool:
        """Keep the entry just filled; True when the chunk is full and must be taken."""
        self.n += 1
        return self.n == CHUNK

    def take(self) -> np.ndarray:
        chunk, self.buffer, self.n = self.buffer[: self.n], np.zeros(CHUNK, ENTRY), 0
        return chunk


def scan_tar(fileobj: IO[bytes]) -> Iterator[np.ndarray]:
    """Entries of a tar shard from its headers alone (member data is seeked over), in chunks."""
    chunks = EntryChunks()
    row, key, end = None, None, 0
    with tarfile.open(fileobj=fileobj, mode="r:") as tar:
        while (member := tar.next()) is not None:
            tar.members.clear()  # tarfile keeps every header it reads; this pass needs none of them
            parts = split_member(member.name) if member.isfile() else None
            if parts is None:
                continue
            if parts[0] != key:
                if row is not None:
                    row["size"] = end - row["offset"]
                    if chunks.commit():
                        yield chunks.take()
                row, key = chunks.next_row(), parts[0]
                row["offset"] = member.offset
            role = EXTENSION_ROLE.get(parts[1])
            if role is not None and row[f"{role}_start"] == 0:
                row[f"{role}_start"] = member.offset_data - row["offset"]
                row[f"{role}_size"] = member.size
            end = member.offset_data + member.size
    if row is not None:
        row["size"] = end - row["offset"]
        chunks.commit()
    yield chunks.take()


def scan_lines(fileobj: IO[bytes], block: int = 1 << 22) -> Iterator[np.ndarray]:
    """Entries of a JSON-lines file (one per non-blank line; offset and length without the line break)."""
    position, carry = 0, b""
    while data := fileobj.read(block):
        buffer = carry + data
        ends = np.flatnonzero(np.frombuffer(buffer, np.uint8) == 10)
        starts = np.concatenate([[0], ends[:-1] + 1])
        yield _line_entries(buffer, position - len(carry), starts, ends)
        carry = buffer[ends[-1] + 1 :] if len(ends) else buffer
        position += len(data)
    if carry.strip() and _complete_json(carry):
        yield _line_entries(carry, position - len(carry), np.array([0]), np.array([len(carry)]))


def _line_entries(buffer: bytes, base: int, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Entries of the lines ``buffer[starts[i]:ends[i]]`` (a trailing ``\\r`` dropped, blank lines left out)."""
    view = np.frombuffer(buffer, np.uint8)
    ends = ends - ((ends > starts) & (view[np.maximum(ends - 1, 0)] == 13))
    printed = np.concatenate([[0], np.cumsum(~np.isin(view, WHITESPACE), dtype=np.int32)])
    keep = printed[ends] > printed[starts]
    chunk = np.zeros(int(keep.sum()), ENTRY)
    chunk["offset"] = base + starts[keep]
    chunk["size"] = ends[keep] - starts[keep]
    return chunk


def _complete_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return True


SCANNERS = {"tar": scan_tar, "lines": scan_lines}


def schema(kind: str, source_size: int) -> Any:
    import pyarrow as pa

    metadata = {"format": FORMAT, "version": VERSION, "kind": kind, "source_size": str(source_size)}
    return pa.schema([(name, pa.from_numpy_dtype(ENTRY[name])) for name in ENTRY.names], metadata=metadata)


def write_index_file(path: str, chunks: Iterator[np.ndarray], kind: str, source_size: int) -> int:
    """Write entry chunks as an index file (atomically); returns the number of entries."""
    import pyarrow as pa

    count = 0
    with atomic_output(path) as f, pa.ipc.new_file(f, schema(kind, source_size)) as writer:
        for chunk in chunks:
            if len(chunk):
                columns = [_arrow_column(np.ascontiguousarray(chunk[name])) for name in ENTRY.names]
                writer.write_batch(pa.record_batch(columns, names=ENTRY.names))
                count += len(chunk)
    return count


def _arrow_column(values: np.ndarray) -> Any:
    """A numpy column as an Arrow array over the same bytes (`pa.array` would import pandas to inspect it)."""
    import pyarrow as pa

    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)])


def index_file_count(path: str, kind: str, source_size: int) -> int | None:
    """The entry count of the index file at ``path`` when it is one of ``kind`` for a source of ``source_size``
    bytes; None when it is missing, unreadable, of another kind or version, or stale."""
    import pyarrow as pa

    fs, real = filesystem(path)
    expected = {"format": FORMAT, "version": VERSION, "kind": kind, "source_size": str(source_size)}
    try:
        with fs.open(real, "rb") as f:
            reader = pa.ipc.open_file(f)
            meta = {k.decode(): v.decode() for k, v in (reader.schema.metadata or {}).items()}
            if meta != expected or reader.schema.names != list(ENTRY.names):
                return None
            return reader.count_rows()
    except (OSError, pa.ArrowInvalid):
        return None


def read_index_chunks(path: str) -> Iterator[np.ndarray]:
    """The entries of an index file, one Arrow record batch at a time."""
    import pyarrow as pa

    fs, real = filesystem(path)
    with fs.open(real, "rb") as f:
        reader = pa.ipc.open_file(f)
        for i in range(reader.num_record_batches):
            batch = reader.get_batch(i)
            chunk = np.empty(batch.num_rows, ENTRY)
            for name in ENTRY.names:
                column = batch.column(name)
                values = np.frombuffer(column.buffers()[1], ENTRY[name])
                chunk[name] = values[column.offset : column.offset + len(column)]
            yield chunk


def index_source(source: str, kind: str, index_path: str | None = None) -> int:
    """Scan ``source`` and write its index file (beside it unless ``index_path``); returns the entry count."""
    fs, real = filesystem(source)
    size = file_size(source)
    try:
        with fs.open(real, "rb") as f:
            return write_index_file(index_path or index_file_path(source), SCANNERS[kind](f), kind, size)
    except (tarfile.TarError, EOFError) as err:
        raise UserError(f"not a readable tar shard ({err})", source) from None
