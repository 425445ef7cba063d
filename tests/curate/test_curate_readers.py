from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from idportrait.curate.readers import InputError, decode_caption, list_shards, read_shard
from idportrait.errors import UserError
from plain_tar import write_plain_tar


def test_laion_columns_aliases_and_missing_columns(tmp_path):
    pq.write_table(
        pa.table({"URL": ["http://x/a.jpg", None], "TEXT": ["A man", None], "WIDTH": [640.0, float("nan")]}),
        tmp_path / "a.parquet",
    )
    (shard,) = list_shards([str(tmp_path / "a.parquet")])
    first, second = read_shard(shard)
    assert (first.url, first.caption, first.width, first.height) == ("http://x/a.jpg", "A man", 640, None)
    assert first.key == "a-0000000" and first.load_error is None
    assert second.load_error == "missing_caption" and second.width is None and second.url is None

    pq.write_table(pa.table({"url": ["http://x/b.jpg"]}), tmp_path / "nocaption.parquet")
    (row,) = read_shard(list_shards([str(tmp_path / "nocaption.parquet")])[0])
    assert row.load_error == "missing_caption"


def test_wrongly_typed_columns_are_bad_rows_not_crashes(tmp_path):
    pq.write_table(pa.table({"caption": [3, None], "url": [7, 8], "width": ["wide", "x"]}), tmp_path / "t.parquet")
    rows = list(read_shard(list_shards([str(tmp_path / "t.parquet")])[0]))
    assert [(r.caption, r.load_error, r.url, r.width) for r in rows] == [(None, "missing_caption", None, None)] * 2


def test_non_utf8_captions_are_a_drop_reason(tmp_path):
    pq.write_table(pa.table({"caption": pa.array([b"\xffportrait", b"Portrait"], pa.binary())}), tmp_path / "b.parquet")
    bad, good = read_shard(list_shards([str(tmp_path / "b.parquet")])[0])
    assert bad.load_error == "caption_not_utf8" and bad.caption is None
    assert good.caption == "Portrait"
    assert decode_caption(b"\xc3\x28") == (None, "caption_not_utf8")
    assert decode_caption("  ") == (None, "missing_caption")


def test_webdataset_groups_members_by_key(tmp_path):
    write_plain_tar(
        tmp_path / "w.tar",
        {
            "000.jpg": b"jpegbytes",
            "000.txt": b"Ein Mann",
            "000.json": b'{"width": 800, "height": 600, "url": "http://x/0.jpg", "similarity": 0.3}',
            "001.txt": b"\xff\xfe",
            "001.json": b"not json",
            "sub/002.png": b"pngbytes",
            "sub/002.txt": b"A woman",
        }.items(),
    )
    a, b, c = read_shard(list_shards([str(tmp_path / "w.tar")])[0])
    assert (a.key, a.caption, a.width, a.height, a.image_bytes, a.url) == (
        "000",
        "Ein Mann",
        800,
        600,
        b"jpegbytes",
        "http://x/0.jpg",
    )
    assert a.meta["similarity"] == 0.3
    assert b.load_error == "caption_not_utf8" and b.image_bytes is None
    assert (c.key, c.image_bytes, c.caption) == ("sub/002", b"pngbytes", "A woman")


def test_empty_shard_holds_no_samples(tmp_path):
    (tmp_path / "empty.tar").write_bytes(b"")
    write_plain_tar(tmp_path / "nomembers.tar", [])
    assert [list(read_shard(s)) for s in list_shards([str(tmp_path)])] == [[], []]


@pytest.mark.parametrize("name", ["junk.parquet", "junk.tar"])
def test_malformed_files_raise_a_clear_error_naming_them(tmp_path, name):
    (tmp_path / name).write_bytes(b"this is not a shard at all" * 40)
    with pytest.raises(InputError, match=name) as info:
        list(read_shard(list_shards([str(tmp_path / name)])[0]))
    assert isinstance(info.value, UserError)


def test_listing_inputs(tmp_path):
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        write_plain_tar(tmp_path / sub / "part.tar", [])
    shards = list_shards([str(tmp_path / "*")])
    assert [s.name for s in shards] == ["part", "part-1"]  # unique output names
    with pytest.raises(InputError, match="unknown input type"):
        (tmp_path / "notes.csv").write_text("a,b")
        list_shards([str(tmp_path / "notes.csv")])
    with pytest.raises(InputError, match=r"no \.parquet or \.tar"):
        list_shards([str(tmp_path / "nothing-*.tar")])


def test_fsspec_memory_paths():
    import fsspec

    fs = fsspec.filesystem("memory")
    buf = io.BytesIO()
    pq.write_table(pa.table({"caption": ["Portrait of a nurse"], "url": ["http://x"]}), buf)
    fs.pipe("/curate-test/in/m.parquet", buf.getvalue())
    (shard,) = list_shards(["memory://curate-test/in"])
    assert shard.path.startswith("memory://")
    assert [s.caption for s in read_shard(shard)] == ["Portrait of a nurse"]


def test_laion_and_img2dataset_column_names_are_read_unchanged(tmp_path):
    pq.write_table(
        pa.table(
            {
                "URL": ["http://x/a.jpg", "http://x/b.jpg"],
                "TEXT": ["A man", "Ein Mann"],
                "WIDTH": [640, 800],
                "HEIGHT": [480, 600],
                "NSFW": ["UNLIKELY", "NSFW"],
                "punsafe": [0.01, float("nan")],
                "pwatermark": [0.2, 0.9],
                "LANGUAGE": ["en", "de"],
                "similarity": [0.31, 0.29],
            }
        ),
        tmp_path / "laion.parquet",
    )
    first, second = read_shard(list_shards([str(tmp_path / "laion.parquet")])[0])
    assert (first.url, first.caption, first.width, first.height) == ("http://x/a.jpg", "A man", 640, 480)
    assert (first.nsfw, first.punsafe, first.pwatermark, first.language) == ("UNLIKELY", 0.01, 0.2, "en")
    assert (second.nsfw, second.punsafe, second.language) == ("NSFW", None, "de")
    assert first.meta["similarity"] == 0.31 and first.meta["NSFW"] == "UNLIKELY"  # passed through

    write_plain_tar(
        tmp_path / "w.tar",
        {"000.txt": b"A man", "000.json": b'{"url": "http://x/0.jpg", "punsafe": 0.7, "NSFW": "UNSURE"}'}.items(),
    )
    (row,) = read_shard(list_shards([str(tmp_path / "w.tar")])[0])
    assert (row.punsafe, row.nsfw, row.language) == (0.7, "UNSURE", None)
