from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from idportrait.curate.download import fetch_images, fetch_url
from idportrait.curate.types import Sample


@pytest.fixture()
def loopback(tmp_path: Path):
    """A local HTTP server over tmp_path; yields its base url."""
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8\xffimage")
    (tmp_path / "empty.jpg").write_bytes(b"")

    def handler(*args, **kwargs):
        return http.server.SimpleHTTPRequestHandler(*args, directory=str(tmp_path), **kwargs)

    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_fetch_url(loopback):
    assert fetch_url(f"{loopback}/a.jpg") == b"\xff\xd8\xffimage"
    assert fetch_url(f"{loopback}/missing.jpg") is None  # 404
    assert fetch_url(f"{loopback}/empty.jpg") is None
    assert fetch_url(f"{loopback}/a.jpg", max_bytes=4) is None
    assert fetch_url("http://127.0.0.1:9/refused.jpg", timeout=2) is None
    assert fetch_url("not a url") is None


def test_fetch_images_sets_bytes_or_a_reason(loopback):
    samples = [
        Sample("ok", "x", url=f"{loopback}/a.jpg"),
        Sample("404", "x", url=f"{loopback}/nope.jpg"),
        Sample("nourl", "x"),
        Sample("has", "x", url=f"{loopback}/nope.jpg", image_bytes=b"kept"),
    ]
    fetch_images(samples, threads=4)
    assert [(s.image_bytes, s.fetch_error) for s in samples] == [
        (b"\xff\xd8\xffimage", None),
        (None, "download_failed"),
        (None, "no_image"),
        (b"kept", None),
    ]
