from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from curate_loopback import IMAGES, closed_port_url, loopback_server

from idportrait.curate.config import CurateConfig
from idportrait.curate.img2dataset_stage import download_shards, text_prefilter
from idportrait.curate.readers import InputError, list_shards
from idportrait.curate.runner import run_local
from idportrait.curate.sample import PHOTOS
from plain_tar import write_plain_tar

CFG = CurateConfig(detector="dlib")


def test_text_prefilter_drops_rows_before_any_download(tmp_path):
    src, dst = tmp_path / "urls.parquet", tmp_path / "kept.parquet"
    table = {
        "url": ["a", "b", "c", "d"],
        "caption": ["Portrait of a woman", "Portrait of a man", "Ein rotes Auto parkt nachts", "A nurse at work"],
        "width": [640, 300, 640, None],
        "height": [640, 900, 640, None],
        "punsafe": [0.1, 0.1, 0.1, 0.9],
    }
    pq.write_table(pa.table(table), src)
    counts = text_prefilter(str(src), str(dst), CFG)
    assert pq.read_table(dst).to_pydict() == {k: [v[0]] for k, v in table.items()}
    assert counts["rows"] == 4 and counts["passed"] == 1
    assert counts["dropped"] == {"low_resolution_metadata": 1, "not_english": 1, "unsafe_score": 1}
    pq.write_table(pa.table({"caption": ["x"]}), src)
    with pytest.raises(InputError, match="no url column"):
        text_prefilter(str(src), str(dst), CFG)


@pytest.mark.slow
def test_img2dataset_path_decides_every_url_once(tmp_path, dlib_detect):
    """Text stage first, sharded tars, img2dataset's failures in curate's decisions, its parquet never an input."""
    buf = io.BytesIO()
    PHOTOS["astronaut_crop"]().save(buf, format="JPEG")
    IMAGES["woman.jpg"] = buf.getvalue()
    with loopback_server() as server:
        table = {
            "url": [
                f"{server.url}/ok/woman.jpg",
                f"{server.url}/status/404",
                closed_port_url(),
                f"{server.url}/ok/thumbnail.jpg",
                f"{server.url}/ok/car.jpg",
            ],
            "caption": [
                "Portrait of a woman",
                "Portrait of a man",
                "A nurse",
                "A tiny thumbnail of a man",
                "Ein rotes Auto parkt nachts",
            ],
            "width": [640, 800, None, 100, 640],
            "height": [640, 800, None, 100, 640],
        }
        pq.write_table(pa.table(table), tmp_path / "urls.parquet")
        shards, counts = download_shards(str(tmp_path / "urls.parquet"), str(tmp_path / "dl"), CFG, shard_size=2)
        requested = dict(server.requests)
    assert counts["passed"] == 3 and len(shards) == 2  # 3 rows, 2 per shard
    assert "/ok/thumbnail.jpg" not in requested and "/ok/car.jpg" not in requested
    assert [s.path for s in list_shards([str(tmp_path / "dl")])] == shards  # img2dataset's parquet is no input

    summary = run_local([str(tmp_path / "dl")], str(tmp_path / "out"), CFG, workers=1, detect=dlib_detect)
    assert (summary.samples, summary.kept) == (3, 1)
    rows = [r for p in sorted((tmp_path / "out" / "decisions").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    reasons = sorted(r["reason"] or "kept" for r in rows)
    assert reasons == ["download_failed:connection_refused", "download_failed:http_404", "kept"]
    assert len({r["key"] for r in rows}) == 3


def test_an_img2dataset_folder_reads_as_its_tars_then_their_failed_rows(tmp_path):
    import json

    from idportrait.curate.readers import read_shard

    write_plain_tar(
        tmp_path / "00000.tar", [("000000.jpg", b"\xff\xd8\xffjpeg"), ("000000.txt", b"Portrait of a woman")]
    )
    rows = [
        {"key": "000000", "caption": "Portrait of a woman", "status": "success", "error_message": None},
        {
            "key": "000001",
            "caption": "Portrait of a man",
            "status": "failed_to_download",
            "error_message": "HTTP Error 404: Not Found",
        },
        {
            "key": "000002",
            "caption": "A nurse",
            "status": "failed_to_download",
            "error_message": "<urlopen error timed out>",
        },
        {"key": "000003", "caption": "A pilot", "status": "failed_to_resize", "error_message": "Image decoding error"},
    ]
    pq.write_table(
        pa.Table.from_pylist([{**r, "url": f"http://x/{r['key']}", "punsafe": 0.1} for r in rows]),
        tmp_path / "00000.parquet",
    )
    (tmp_path / "00000_stats.json").write_text(json.dumps({"count": 4}))
    (shard,) = list_shards([str(tmp_path)])
    assert shard.path.endswith("00000.tar")
    samples = list(read_shard(shard))
    assert [(s.key, s.image_bytes is not None, s.fetch_error) for s in samples] == [
        ("000000", True, None),
        ("000001", False, "download_failed:http_404"),
        ("000002", False, "download_failed:timeout"),
        ("000003", False, None),  # fetched but not an image: decided broken_image
    ]
    assert (
        samples[1].punsafe == 0.1 and samples[1].url == "http://x/000001" and samples[1].caption == "Portrait of a man"
    )
