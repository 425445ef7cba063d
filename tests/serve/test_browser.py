"""End to end in headless Chromium: the gradio app on loopback with tiny models, driven by Playwright.

Uses the system Chromium (Debian package ``chromium``; `make install` adds it) - never a downloaded
browser. Upload the astronaut -> generate -> portraits appear with a download; upload a photo of a
coffee cup -> the no-face message is shown.
"""

from __future__ import annotations

import shutil
import socket

import pytest
from PIL import Image
from skimage import data
from web_tiny_demo import tiny_demo

from idportrait.serve.app import build_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    app = build_app(tiny_demo(tmp_path_factory.mktemp("demo")))
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    app.close()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(180_000)  # CI machines can be slow; every wait below is for a real event
        page.goto(server, wait_until="networkidle")
        page.locator("#generate").wait_for()
        yield page
        browser.close()


@pytest.mark.slow
def test_upload_generate_and_error_path(page, tmp_path):
    face, cup = tmp_path / "astronaut.png", tmp_path / "coffee.jpg"
    Image.fromarray(data.astronaut()).save(face)
    Image.fromarray(data.coffee()).save(cup)

    page.locator("#upload input[type=file]").set_input_files(str(face))
    page.locator("#upload").get_by_text("astronaut.png").wait_for()
    page.locator("#generate").click()
    page.locator("#gallery img").first.wait_for()
    assert page.locator("#gallery img").count() >= 2
    page.locator("#status").get_by_text("Done: 2 image(s)").wait_for()
    assert page.locator("#download a").count() == 2
    assert "00-seed42" in page.locator("#download").inner_text()

    page.locator("#upload button[aria-label='Clear']").first.click()
    page.locator("#upload input[type=file]").set_input_files(str(cup))
    page.locator("#upload").get_by_text("coffee.jpg").wait_for()
    page.locator("#generate").click()
    page.locator("#status").get_by_text("No face found in this photo").wait_for()
