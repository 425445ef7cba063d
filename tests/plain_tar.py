"""Tars written by plain tarfile, member by member (as older output and other tools write them): no index file."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable
from pathlib import Path


def write_plain_tar(path: Path, members: Iterable[tuple[str, bytes]]) -> Path:
    """A tar at ``path`` of ``(name, bytes)`` members, in the order given."""
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path
