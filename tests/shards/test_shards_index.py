"""The writer's index entries, header scans of other tars, the dataset index and its fingerprint, lazy reads."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest
from shard_files import eager_samples, faceid_members, jpeg

from idportrait.errors import UserError
from idportrait.shards import index as shard_index
from idportrait.shards.index import build_index, find_sources, fingerprint_changes
from idportrait.shards.index_file import index_file_count, index_file_path, read_index_chunks, scan_lines, scan_tar
from idportrait.shards.layout import ROLES
from idportrait.shards.reader import FaceIDSamples
from idportrait.shards.writer import write_shard
from plain_tar import write_plain_tar

LONG_STEM = "x" * 150  # longer than a ustar name: tarfile writes an extended header first


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> list[Path]:
    """a.tar from the writer (with its index file), b.tar by plain tarfile in img2dataset's manner (png images,
    extra members, no index file)."""
    root = tmp_path_factory.mktemp("shards")
    stems = ["s0", LONG_STEM, "s2", "s3"]
    write_shard(str(root / "a.tar"), [(stem, faceid_members(i)) for i, stem in enumerate(stems)])
    members = []
    for i in range(3):
        parts = faceid_members(10 + i)
        members += [(f"b{i}.png", parts["image"]), (f"b{i}.txt", parts["text"]), (f"b{i}.json", parts["json"]),
                    (f"b{i}.parquet_row", b"x")]  # fmt: skip
    write_plain_tar(root / "b.tar", members)
    return [root / "a.tar", root / "b.tar"]


def test_writer_entries_equal_a_scan_of_the_tar_headers(shards):
    with open(shards[0], "rb") as f:
        scanned = np.concatenate(list(scan_tar(f)))
    written = np.concatenate(list(read_index_chunks(index_file_path(str(shards[0])))))
    assert len(written) == 4 and np.array_equal(written, scanned)
    data = shards[0].read_bytes()
    for i, entry in enumerate(written):  # each member's bytes are where the entry says
        members = faceid_members(i)
        for role in ROLES:
            start = int(entry["offset"] + entry[f"{role}_start"])
            assert data[start : start + int(entry[f"{role}_size"])] == members[role]
    assert index_file_count(index_file_path(str(shards[0])), "tar", len(data)) == 4
    assert index_file_count(index_file_path(str(shards[0])), "tar", len(data) + 1) is None  # a stale index file


def test_lazy_reading_equals_eager_reading_sample_for_sample(shards, tmp_path):
    index = build_index([str(p) for p in shards], "tar", tmp_path / "index", require=ROLES)
    assert Path(index_file_path(str(shards[1]))).is_file()  # made for the tar that had none
    lazy = FaceIDSamples(index)
    eager = eager_samples(shards)
    assert len(lazy) == len(eager) == 7
    for i, want in enumerate(eager):
        got = lazy[i]
        assert (got.key, got.source, got.caption, got.record) == (
            want["key"],
            want["source"],
            want["txt"],
            want["json"],
        )
        assert got.image == want.get("jpg", want.get("png"))
    assert lazy[1].key == LONG_STEM
    assert index.entries.itemsize == 40 and isinstance(index.entries, np.memmap)


def test_index_is_reused_and_rebuilt_when_the_data_changes(shards, tmp_path):
    folder = tmp_path / "index"
    first = build_index([str(shards[0])], "tar", folder)
    built = (folder / "entries.npy").stat().st_mtime_ns
    again = build_index([str(shards[0])], "tar", folder)
    assert (folder / "entries.npy").stat().st_mtime_ns == built and again.fingerprint() == first.fingerprint()

    both = build_index([str(p) for p in shards], "tar", folder)
    assert len(both) == 7
    assert fingerprint_changes(first.fingerprint(), both.fingerprint()) == [
        f"{shards[1]} added",
        "samples 7 (checkpoint: 4)",
    ]
    grown = tmp_path / "a.tar"
    write_shard(str(grown), [(f"s{i}", faceid_members(i)) for i in range(5)])
    changed = build_index([str(grown)], "tar", folder)
    moved = {**first.fingerprint(), "sources": [[str(grown), *first.fingerprint()["sources"][0][1:]]]}
    size = grown.stat().st_size
    assert fingerprint_changes(moved, changed.fingerprint())[0] == (
        f"{grown} changed ({shards[0].stat().st_size} -> {size} bytes, 4 -> 5 samples)"
    )


def test_a_sample_without_a_caption_is_refused_by_name(tmp_path):
    shard = write_plain_tar(tmp_path / "c.tar", [("k0.jpg", jpeg(0)), ("k0.txt", b"a"), ("k0.json", b"{}"),
                                                 ("k1.jpg", jpeg(1)), ("k1.json", b"{}")])  # fmt: skip
    with pytest.raises(UserError, match=r"c.tar: sample 'k1' has no text member \(1 such samples\)"):
        build_index([str(shard)], "tar", tmp_path / "index", require=ROLES)
    truncated = tmp_path / "t.tar"
    truncated.write_bytes(shard.read_bytes()[:1500])
    with pytest.raises(UserError, match=r"t\.tar: not a readable tar shard"):
        build_index([str(truncated)], "tar", tmp_path / "index2")


def test_a_source_folder_that_cannot_be_written_gets_its_index_file_in_the_index_folder(shards, tmp_path, monkeypatch):
    shard = tmp_path / "ro" / "b.tar"
    shard.parent.mkdir()
    shard.write_bytes(shards[1].read_bytes())
    real = shard_index.index_source

    def read_only_beside(source, kind, index_path=None):
        if index_path is None:
            raise OSError(errno.EROFS, "Read-only file system")
        return real(source, kind, index_path)

    monkeypatch.setattr(shard_index, "index_source", read_only_beside)
    index = build_index([str(shard)], "tar", tmp_path / "index")
    assert len(index) == 3 and not Path(index_file_path(str(shard))).exists()
    assert len(list((tmp_path / "index" / "sources").glob("b.tar-*.idx.arrow"))) == 1


@pytest.mark.parametrize("block", [3, 1 << 20])
def test_line_entries_skip_blank_and_torn_lines(tmp_path, block):
    lines = [b'{"a": 1}', b"", b'{"b": "\xc3\xa9"}\r', b"  ", b'{"c": [1, 2]}']
    path = tmp_path / "r.jsonl"
    for tail, kept in ((b'{"torn": ', 3), (b'{"whole": true}', 4), (b"", 3)):
        data = b"\n".join(lines) + b"\n" + tail
        path.write_bytes(data)
        with open(path, "rb") as f:
            entries = np.concatenate(list(scan_lines(f, block)))
        got = [data[int(e["offset"]) : int(e["offset"] + e["size"])] for e in entries]
        assert got == [b'{"a": 1}', b'{"b": "\xc3\xa9"}', b'{"c": [1, 2]}', b'{"whole": true}'][:kept]
        assert all(json.loads(g) for g in got)


def test_sources_are_absolute_and_given_once(shards, monkeypatch):
    monkeypatch.chdir(shards[0].parent)
    assert find_sources(["a.tar", "b.tar"], "tar") == [str(p) for p in shards]
    assert find_sources(["."], "tar") == [str(p) for p in shards]  # a folder: its .tar files, sorted
    with pytest.raises(UserError, match=r"a\.tar: given twice"):
        find_sources([".", "a.tar"], "tar")
