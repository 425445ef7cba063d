"""Write a FaceID tar shard and, as each sample goes in, its index entry; the index file follows the tar.

    write_shard("out/shards/a.tar", [(stem, {"image": jpg, "text": caption, "json": record}), ...])
    -> out/shards/a.tar            members <stem>.jpg, <stem>.txt, <stem>.json per sample (see `layout`)
       out/shards/a.tar.idx.arrow  one entry per sample: where its members' bytes are (see `index_file`)

Both are written atomically, the tar first: an index file never describes a tar that is not there.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable, Mapping

import numpy as np

from idportrait.shards.files import atomic_output
from idportrait.shards.index_file import EntryChunks, index_file_path, write_index_file
from idportrait.shards.layout import ROLES, member_names


class TarShardWriter:
    """Appends samples to an open tar, recording each sample's entry from the offsets it writes."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.entries = EntryChunks()
        self.chunks: list[np.ndarray] = []

    def add(self, stem: str, members: Mapping[str, bytes]) -> None:
        """Write one sample: ``members`` maps each role (image, text, json) to its bytes."""
        row = self.entries.next_row()
        row["offset"] = self.tar.offset
        names = member_names(stem)
        for role in ROLES:
            data = members[role]
            info = tarfile.TarInfo(names[role])
            info.size = len(data)
            self.tar.addfile(info, io.BytesIO(data))
            data_end = self.tar.offset - _padding(len(data))
            row[f"{role}_start"] = data_end - len(data) - row["offset"]
            row[f"{role}_size"] = len(data)
            row["size"] = data_end - row["offset"]
        if self.entries.commit():
            self.chunks.append(self.entries.take())

    def entry_chunks(self) -> list[np.ndarray]:
        """The entries of every sample added, in chunks (call once, after the last `add`)."""
        return [*self.chunks, self.entries.take()]


def _padding(size: int) -> int:
    """Zero bytes tar adds after ``size`` bytes of member data (to a multiple of 512)."""
    return -size % tarfile.BLOCKSIZE


def write_shard(path: str, samples: Iterable[tuple[str, Mapping[str, bytes]]]) -> int:
    """Write the tar at ``path`` and then its index file; returns the number of samples."""
    with atomic_output(path) as f:
        with tarfile.open(fileobj=f, mode="w") as tar:
            writer = TarShardWriter(tar)
            for stem, members in samples:
                writer.add(stem, members)
        size = f.tell()  # tarfile leaves a file it did not open open, after its end-of-archive blocks
    return write_index_file(index_file_path(path), iter(writer.entry_chunks()), "tar", size)
