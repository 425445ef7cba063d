from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pyarrow.parquet as pq
import pytest
from curate_loopback import IMAGE, closed_port_url, loopback_server

from idportrait.curate.download import DownloadConfig, Fetched, Fetcher, download_stage
from idportrait.curate.types import Sample

FAST = DownloadConfig(deadline_s=0.6, connect_timeout_s=0.5, retries=1, backoff_s=0.01, max_bytes=1000)


@pytest.fixture(scope="module")
def server():
    with loopback_server() as server:
        yield server


def test_every_failure_is_named_and_nothing_raises(server):
    fetcher = Fetcher(FAST)
    cases = {
        "/ok/a.jpg": Fetched(body=IMAGE),
        "/redirect/a.jpg": Fetched(body=IMAGE),
        "/status/404": Fetched(error="http_404"),
        "/status/410": Fetched(error="http_410"),
        "/status/500": Fetched(error="http_500"),
        "/drip": Fetched(error="timeout"),
        "/hang": Fetched(error="timeout"),
        "/badstatus": Fetched(error="malformed_response"),
        "/incomplete": Fetched(error="incomplete_body"),
        "/close": Fetched(error="connection_reset"),
        "/empty": Fetched(error="empty_body"),
        "/big": Fetched(error="body_too_large"),
        "/bigchunked": Fetched(error="body_too_large"),
        "/loop": Fetched(error="too_many_redirects"),
    }
    with ThreadPoolExecutor(len(cases)) as pool:
        got = dict(zip(cases, pool.map(lambda path: fetcher.fetch(server.url + path), cases), strict=True))
    assert got == cases
    assert fetcher.fetch(closed_port_url()) == Fetched(error="connection_refused")
    for url in ("ftp://example.org/a.jpg", "not a url", "http://[::1/x.jpg", "http:///nohost.jpg"):
        assert fetcher.fetch(url) == Fetched(error="bad_url"), url
    assert server.requests["/status/500"] == 2 and server.requests["/hang"] == 2  # retried once
    assert server.requests["/status/404"] == 1 and server.requests["/badstatus"] == 1  # not retried


def test_a_deadline_bounds_the_whole_download(server):
    """A host dripping a byte every 0.1 s: stopped at the deadline, not after each read's timeout."""
    fetcher = Fetcher(DownloadConfig(deadline_s=0.5, retries=0))
    start = time.monotonic()
    assert fetcher.fetch(f"{server.url}/drip") == Fetched(error="timeout")
    assert time.monotonic() - start < 1.5


def test_a_5xx_reply_is_retried_with_backoff(server):
    fetcher = Fetcher(FAST)
    assert fetcher.fetch(f"{server.url}/flaky/1") == Fetched(body=IMAGE)
    assert server.requests["/flaky/1"] == 2


def test_at_most_per_host_downloads_run_against_one_host():
    fetcher = Fetcher(DownloadConfig(per_host=2, threads=8))
    samples = [Sample(str(i), "x", url=f"/slow/{i}") for i in range(8)]
    with loopback_server() as server:
        for sample in samples:
            sample.url = server.url + sample.url
        download_stage(samples, fetcher)
        assert server.most_slow == 2
    assert all(s.image_bytes == IMAGE for s in samples)


def test_download_stage_sets_bytes_or_a_reason_with_the_status(server):
    samples = [
        Sample("ok", "x", url=f"{server.url}/ok/a.jpg"),
        Sample("404", "x", url=f"{server.url}/status/404"),
        Sample("nourl", "x"),
        Sample("has", "x", url=f"{server.url}/status/404", image_bytes=b"kept"),
        Sample("refused", "x", url=closed_port_url()),
    ]
    download_stage(samples, Fetcher(FAST))
    assert [(s.image_bytes, s.fetch_error) for s in samples] == [
        (IMAGE, None),
        (None, "download_failed:http_404"),
        (None, "no_image"),
        (b"kept", None),
        (None, "download_failed:connection_refused"),
    ]


def test_a_run_over_the_failure_corpus_decides_every_row_once(server, tmp_path):
    """One row per way a download fails, through the whole streaming runner: no crash, one decision each."""
    from curate_shards import small_shard

    from idportrait.curate.config import CurateConfig
    from idportrait.curate.options import StageOptions
    from idportrait.curate.runner import run_local

    paths = ["/status/404", "/status/500", "/drip", "/hang", "/badstatus", "/incomplete", "/close", "/empty", "/loop"]
    urls = [server.url + p for p in paths] + [closed_port_url(), "ftp://example.org/a.jpg", f"{server.url}/ok/a.jpg"]
    (tmp_path / "in").mkdir()
    small_shard(
        tmp_path / "in" / "web.parquet", [(f"Portrait of a woman, take {i}", None, u) for i, u in enumerate(urls)]
    )
    options = StageOptions(detect_batch=4, download=FAST)
    summary = run_local([str(tmp_path / "in")], str(tmp_path / "out"), CurateConfig(detector="dlib"), options=options)
    assert (summary.samples, summary.kept, summary.failed) == (len(urls), 0, [])
    rows = pq.read_table(tmp_path / "out" / "decisions" / "web.parquet").to_pylist()
    assert [r["key"] for r in rows] == [f"web-{i}" for i in range(len(urls))]
    assert [r["reason"] for r in rows] == [
        "download_failed:http_404",
        "download_failed:http_500",
        "download_failed:timeout",
        "download_failed:timeout",
        "download_failed:malformed_response",
        "download_failed:incomplete_body",
        "download_failed:connection_reset",
        "download_failed:empty_body",
        "download_failed:too_many_redirects",
        "download_failed:connection_refused",
        "download_failed:bad_url",
        "broken_image",  # served, but the bytes are no image
    ]
