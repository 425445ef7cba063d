"""End to end in headless Chromium: the gradio app on loopback with tiny models, driven by Playwright.

Upload the astronaut -> generate -> portraits appear with a download; upload a photo of a coffee cup ->
the no-face message is shown. Every wait is for something the app does (the status line the server writes
after an upload or a click, the gallery's images), never for the file component's markup: gradio shows
"Uploading 1 file... astronaut.png" only while the upload is in flight and then renders the name as
"astronaut" + ".png" in two elements. Demo, browser, page and failure screenshots: `conftest.py`.
"""

from __future__ import annotations

import pytest
from PIL import Image
from playwright.sync_api import expect
from skimage import data

from idportrait.serve.app import build_app
from loopback_port import free_port


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


def choose(page, elem_id: str, photo) -> None:
    """Put ``photo`` into the image upload ``elem_id`` and wait until its preview shows."""
    page.locator(f"#{elem_id} input[type=file]").set_input_files(str(photo))
    expect(page.locator(f"#{elem_id} img")).to_have_count(1)


@pytest.mark.slow
def test_repaint_the_face_into_a_photo_and_inpaint_with_a_mask(page, server, tmp_path, request):
    """ConsistentID: the face of the uploaded person repainted into another photo (its face found there), then a
    region of that photo repainted through an uploaded mask. Screenshots of both pages go to
    ``outputs/screenshots/web_demo_repaint_*.png`` (docs/img holds copies)."""
    shots = request.config.rootpath / "outputs" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    face, scene, mask = tmp_path / "astronaut.png", tmp_path / "scene.png", tmp_path / "mask.png"
    Image.fromarray(data.astronaut()).save(face)
    Image.fromarray(data.astronaut()).resize((384, 384)).save(scene)
    square = Image.new("L", (384, 384))
    square.paste(255, (0, 0, 110, 240))  # the flag
    square.save(mask)
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.goto(server)
    upload(page, face)
    page.get_by_role("combobox", name="Method").click()
    page.get_by_role("option", name="consistentid").click()
    page.locator("#repaint").get_by_text("Repaint the face into a photo").click()
    choose(page, "target", scene)

    page.locator("#generate").click()
    expect(page.locator("#status")).to_contain_text("Done: 2 image(s) with consistentid, repainted into the photo.")
    expect(page.locator("#gallery img")).to_have_count(2)
    expect(page.locator("#masks img")).to_have_count(1)
    page.screenshot(path=str(shots / "web_demo_repaint_face.png"), full_page=True)

    choose(page, "repaint-mask", mask)
    page.locator("#seed input").fill("7")
    page.locator("#generate").click()
    expect(page.locator("#download")).to_contain_text("01-seed8")  # this click's images, not the last ones
    expect(page.locator("#status")).to_contain_text("Done: 2 image(s) with consistentid, repainted into the photo.")
    expect(page.locator("#gallery img")).to_have_count(2)
    page.screenshot(path=str(shots / "web_demo_repaint_mask.png"), full_page=True)
