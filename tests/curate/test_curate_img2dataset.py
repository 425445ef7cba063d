from __future__ import annotations

import http.server
import io
import tarfile
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from idportrait.curate.img2dataset_stage import download_shards, metadata_prefilter
from idportrait.curate.readers import InputError, list_shards, read_shard
from idportrait.curate.sample import PHOTOS


def test_metadata_prefilter_drops_small_rows_before_download(tmp_path):
    src, dst = tmp_path / "urls.parquet", tmp_path / "kept.parquet"
    pq.write_table(pa.table({"url": ["a", "b", "c"], "width": [640, 300, None], "height": [640, 900, None]}), src)
    assert metadata_prefilter(str(src), str(dst), 512) == 2
    assert pq.read_table(dst)["url"].to_pylist() == ["a", "c"]
    pq.write_table(pa.table({"caption": ["x"]}), src)
    with pytest.raises(InputError, match="no url column"):
        metadata_prefilter(str(src), str(dst), 512)


@pytest.mark.slow
def test_img2dataset_downloads_from_a_loopback_server(tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    buf = io.BytesIO()
    PHOTOS["astronaut_crop"]().save(buf, format="JPEG")
    (www / "a.jpg").write_bytes(buf.getvalue())

    def handler(*args, **kwargs):
        return http.server.SimpleHTTPRequestHandler(*args, directory=str(www), **kwargs)

    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    table = {
        "url": [f"{base}/a.jpg", f"{base}/missing.jpg", "http://127.0.0.1:9/refused.jpg", f"{base}/a.jpg"],
        "caption": ["Portrait of a woman", "Portrait of a man", "A nurse", "A tiny thumbnail"],
        "width": [640, 800, None, 100],
        "height": [640, 800, None, 100],
    }
    pq.write_table(pa.table(table), tmp_path / "urls.parquet")
    try:
        shards = download_shards(str(tmp_path / "urls.parquet"), str(tmp_path / "dl"), threads=2, timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert len(shards) == 1
    with tarfile.open(shards[0]) as tar:
        assert sum(name.endswith(".jpg") for name in tar.getnames()) == 1  # 404, refused and small left out
    (sample,) = read_shard(list_shards(shards)[0])
    assert sample.caption == "Portrait of a woman" and sample.image_bytes == buf.getvalue()
    assert (sample.width, sample.height) == (640, 640)
