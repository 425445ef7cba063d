"""The index of a whole dataset: every sample of its sources in one memory-mapped array, shared by every rank and
DataLoader worker on a machine (the pages live in the OS cache once), and the fingerprint a checkpoint keeps.

    <folder>/entries.npy    ENTRY [N] (40 bytes per sample, see `index_file`), the sources' samples in order
    <folder>/sources.json   {"kind", "samples": N, "sources": [{"path", "size", "samples"}, ...]}, written last

`build_index` reuses the folder when ``sources.json`` lists the same sources with the same sizes. Otherwise it
reads each source's index file, first making the missing or stale ones in one streaming pass over their source
(beside it, or under ``<folder>/sources/`` when its folder cannot be written), and concatenates them.
A process holds the source list (one path per shard) and nothing else that grows with the number of samples.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from idportrait.errors import UserError
from idportrait.imageio import write_json
from idportrait.shards.files import file_size, read_range
from idportrait.shards.index_file import (
    ENTRY,
    KINDS,
    index_file_count,
    index_file_path,
    index_source,
    read_index_chunks,
)
from idportrait.shards.layout import span_key

ENTRIES, SOURCES = "entries.npy", "sources.json"


@dataclass(frozen=True)
class Source:
    path: str
    size: int
    samples: int


class SampleIndex:
    """A built index folder: ``len`` samples, ``read(i)`` -> (entry, the sample's bytes by one range read)."""

    def __init__(self, folder: Path) -> None:
        meta = json.loads((Path(folder) / SOURCES).read_text())
        self.folder = Path(folder)
        self.kind: str = meta["kind"]
        self.sources = [Source(**s) for s in meta["sources"]]
        self.samples: int = meta["samples"]
        self._entries: np.ndarray | None = None

    @property
    def entries(self) -> np.ndarray:
        """ENTRY [N], memory-mapped read-only (opened on first use in each process)."""
        if self._entries is None:
            self._entries = np.load(self.folder / ENTRIES, mmap_mode="r")
        return self._entries

    def __len__(self) -> int:
        return self.samples

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_entries": None}  # a worker maps the file itself instead of receiving a copy

    def source(self, entry: np.void) -> Source:
        return self.sources[int(entry["source"])]

    def read(self, i: int) -> tuple[np.void, bytes]:
        """Sample ``i``'s entry and its bytes (a tar sample's headers and members, or a line)."""
        entry = self.entries[i]
        return entry, read_range(self.source(entry).path, int(entry["offset"]), int(entry["size"]))

    def fingerprint(self) -> dict[str, Any]:
        """What a checkpoint remembers of the data: kind, sample count, every source's path, size and count."""
        return {
            "kind": self.kind,
            "samples": self.samples,
            "sources": [[s.path, s.size, s.samples] for s in self.sources],
        }


def fingerprint_changes(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between two fingerprints, one short phrase each (sources named by path)."""
    old = {p: (size, n) for p, size, n in saved.get("sources", [])}
    new = {p: (size, n) for p, size, n in current.get("sources", [])}
    changes = [f"{p} added" for p in new if p not in old] + [f"{p} removed" for p in old if p not in new]
    changes += [
        f"{p} changed ({old[p][0]} -> {new[p][0]} bytes, {old[p][1]} -> {new[p][1]} samples)"
        for p in new
        if p in old and old[p] != new[p]
    ]
    if not changes and list(old) != list(new):
        changes.append("the sources are in another order")
    for key in sorted((saved.keys() | current.keys()) - {"sources"}):
        if saved.get(key) != current.get(key):
            changes.append(f"{key} {current.get(key)} (checkpoint: {saved.get(key)})")
    return changes


SOURCE_SUFFIXES = {"tar": ".tar", "lines": ".jsonl"}
"""What a folder given as data holds, per kind (files given one by one may have any name)."""


def find_sources(paths: list[str | Path], kind: str) -> list[str]:
    """The source files of ``paths`` as absolute paths: files as given, folders as their ``*.tar`` / ``*.jsonl``
    files (sorted)."""
    sources: list[str] = []
    for path in paths:
        path = Path(path).resolve()
        if path.is_dir():
            found = sorted(str(p) for p in path.glob(f"*{SOURCE_SUFFIXES[kind]}") if p.is_file())
            if not found:
                raise UserError(f"no {SOURCE_SUFFIXES[kind]} files in this folder", path)
            sources += found
        elif path.is_file():
            sources.append(str(path))
        else:
            raise UserError("not found, or not a file or folder", path)
    seen: set[str] = set()
    for source in sources:
        if source in seen:
            raise UserError("given twice (its samples would be trained on twice per epoch)", source)
        seen.add(source)
    return sources


def build_index(
    sources: list[str], kind: str, folder: Path, require: tuple[str, ...] = (), progress: bool = True
) -> SampleIndex:
    """Build (or reuse) the index of ``sources`` in ``folder``; ``require``: roles every tar sample must have."""
    if kind not in KINDS:
        raise ValueError(f"unknown index kind {kind!r}")
    folder = Path(folder)
    sizes = [_source_size(s) for s in sources]
    listing = [[s, size] for s, size in zip(sources, sizes, strict=True)]
    try:
        meta = json.loads((folder / SOURCES).read_text())
        same = meta["kind"] == kind and [[s["path"], s["size"]] for s in meta["sources"]] == listing
        if same and (folder / ENTRIES).is_file():
            return SampleIndex(folder)
    except (OSError, ValueError, KeyError, TypeError):
        pass

    index_files = _index_files(sources, sizes, kind, folder, progress)
    counts = [count for _, count in index_files]
    total = sum(counts)
    if total == 0:
        raise UserError(f"no samples in {', '.join(sources)}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SOURCES).unlink(missing_ok=True)  # the old index is no longer valid, whatever happens next
    tmp = folder / f".{ENTRIES}.tmp"
    entries = np.lib.format.open_memmap(tmp, mode="w+", dtype=ENTRY, shape=(total,))
    start = 0
    for number, (source, (path, _)) in enumerate(zip(sources, index_files, strict=True)):
        for chunk in read_index_chunks(path):
            chunk["source"] = number
            _check_roles(source, chunk, require)
            entries[start : start + len(chunk)] = chunk
            start += len(chunk)
    entries.flush()
    del entries
    os.replace(tmp, folder / ENTRIES)
    described = [asdict(Source(s, size, n)) for s, size, n in zip(sources, sizes, counts, strict=True)]
    write_json(folder / SOURCES, {"kind": kind, "samples": total, "sources": described})
    return SampleIndex(folder)


def _source_size(source: str) -> int:
    size = file_size(source)
    if size is None:
        raise UserError("not found, or not a file", source)
    return size


def _index_files(
    sources: list[str], sizes: list[int], kind: str, folder: Path, progress: bool
) -> list[tuple[str, int]]:
    """(index file, entry count) of every source, making the missing ones with a progress bar over bytes."""
    found: dict[str, tuple[str, int]] = {}
    for source, size in zip(sources, sizes, strict=True):
        for path in (index_file_path(source), _fallback_path(folder, source)):
            count = index_file_count(path, kind, size)
            if count is not None:
                found[source] = (path, count)
                break
    todo = [(s, size) for s, size in zip(sources, sizes, strict=True) if s not in found]
    if todo:
        from rich.progress import Progress

        with Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task(f"indexing {len(todo)} of {len(sources)} sources", total=sum(s for _, s in todo))
            for source, size in todo:
                found[source] = _index_one(source, kind, folder)
                bar.advance(task, size)
    return [found[s] for s in sources]


def _index_one(source: str, kind: str, folder: Path) -> tuple[str, int]:
    """Index ``source`` beside it, or under ``folder`` when its own folder is not writable."""
    try:
        return index_file_path(source), index_source(source, kind)
    except OSError as err:
        if err.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
    path = _fallback_path(folder, source)
    return path, index_source(source, kind, path)


def _fallback_path(folder: Path, source: str) -> str:
    digest = hashlib.sha1(source.encode()).hexdigest()[:16]
    return str(folder / "sources" / f"{Path(source).name}-{digest}.idx.arrow")


def _check_roles(source: str, chunk: np.ndarray, require: tuple[str, ...]) -> None:
    """`UserError` naming the first sample of ``chunk`` that lacks a required member."""
    for role in require:
        missing = np.flatnonzero(chunk[f"{role}_start"] == 0)
        if len(missing):
            entry = chunk[missing[0]]
            key = span_key(read_range(source, int(entry["offset"]), int(entry["size"])))
            raise UserError(f"sample {key!r} has no {role} member ({len(missing)} such samples)", source)
