"""End to end in headless Chromium: the gradio app on loopback with tiny models, driven by Playwright.

Upload the astronaut -> generate -> portraits appear with a download; upload a photo of a coffee cup ->
the no-face message is shown. Every wait is for something the app does (the status line the server writes
after an upload or a click, the gallery's images), never for the file component's markup: gradio shows
"Uploading 1 file... astronaut.png" only while the upload is in flight and then renders the name as
"astronaut" + ".png" in two elements. Demo, browser, page and failure screenshots: `conftest.py`.
"""

from __future__ import annotations

import socket

import pytest
from PIL import Image
from playwright.sync_api import expect
from skimage import data

from idportrait.serve.app import build_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(demo):
    app = build_app(demo)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    app.close()


def upload(page, photo) -> None:
    """Choose ``photo`` and wait until the server has it (the status line the upload's change event writes)."""
    page.locator("#upload input[type=file]").set_input_files(str(photo))
    expect(page.locator("#status")).to_contain_text(f"Photo ready: {photo.name}")


@pytest.mark.slow
def test_upload_generate_and_error_path(page, server, tmp_path):
    face, cup = tmp_path / "astronaut.png", tmp_path / "coffee.jpg"
    Image.fromarray(data.astronaut()).save(face)
    Image.fromarray(data.coffee()).save(cup)
    page.goto(server)

    upload(page, face)
    page.locator("#generate").click()
    expect(page.locator("#status")).to_contain_text("Done: 2 image(s) with ipadapter-faceid.")
    expect(page.locator("#gallery img")).to_have_count(2)
    expect(page.locator("#download a")).to_have_count(2)
    expect(page.locator("#download")).to_contain_text("00-seed42")

    page.locator("#upload button[aria-label='Clear']").first.click()
    expect(page.locator("#status")).to_have_text("")
    upload(page, cup)
    page.locator("#generate").click()
    expect(page.locator("#status")).to_contain_text("No face found in this photo")
