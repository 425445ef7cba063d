"""The human-study page (`idportrait evaluate rate`) in headless Chromium: two raters, keyboard and mouse,
a reload in the middle, back and skip; the ratings are then read from the SQLite file.

Each rater has their own browser context (the page remembers the rater's name in that browser). Every wait
is for text the server writes (the progress line, the prompt box) or for a checked radio, never for layout.
"""

from __future__ import annotations

import pytest
from browser_wait import PAGE_TIMEOUT_MS
from PIL import Image

from idportrait.evaluation.rating_app import KEYBOARD_JS, Study, build_rating_app
from idportrait.evaluation.rating_db import open_study
from idportrait.evaluation.rating_items import collect_items
from idportrait.evaluation.rating_sample import rater_order
from idportrait.generate.batch import save_with_seed
from loopback_port import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Study:
    """2 methods x 2 identities x 1 prompt = 4 images (generate-batch PNGs), each a flat colour."""
    root = tmp_path_factory.mktemp("study")
    for k, who in enumerate(["ana", "bo"]):
        (root / "refs").mkdir(exist_ok=True)
        Image.new("RGB", (48, 48), (200, 60 * k, 40)).save(root / "refs" / f"{who}.png")
        for m, method in enumerate(["faceid", "plain"]):
            image = Image.new("RGB", (48, 48), (40, 100 + 60 * m, 60 * k))
            path = root / "generated" / method / who / "000_00.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            save_with_seed(path, image, 0, prompt=f"{who} painted by {method}", method=method, references=[])
    items = collect_items(root / "generated", root / "refs")
    return Study(open_study(root / "ratings.sqlite", [i.study for i in items], {"seed": "0"}), items, seed=0)


@pytest.fixture(scope="module")
def server(study):
    port = free_port()
    page = build_rating_app(study)
    page.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, head=KEYBOARD_JS)
    yield f"http://127.0.0.1:{port}/"
    page.close()


def open_as(browser, server: str, rater: str):
    """A new browser (context) on the page, signed in as ``rater``."""
    from playwright.sync_api import expect

    expect.set_options(timeout=PAGE_TIMEOUT_MS)  # slow CI machines; every wait is for a real event
    page = browser.new_context().new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page.goto(server)
    page.get_by_label("Your name (asked once)").fill(rater)
    page.locator("#start").click()
    expect(page.locator("#progress")).to_contain_text(f"rated by {rater}")
    return page


def expect_item(page, study: Study, rater: str, position: int, rated: int) -> str:
    """Wait until the page shows ``rater``'s image at ``position``; returns that image's key."""
    from playwright.sync_api import expect

    expect(page.locator("#progress")).to_contain_text(f"{position + 1} of 4 · {rated} rated by {rater}")
    item = study.items[rater_order(4, rater, 0)[position]]
    expect(page.locator("#prompt textarea")).to_have_value(item.study.prompt)
    return item.study.image


def test_two_raters_keyboard_mouse_reload_back_and_skip(study, server, browser):
    from playwright.sync_api import expect

    ana = open_as(browser, server, "ana")
    first = expect_item(ana, study, "ana", 0, rated=0)
    assert "faceid" not in ana.locator("#panel").inner_text() and "plain" not in ana.locator("#panel").inner_text()
    for key in "453":  # keyboard: prompt, FaceID, quality; the third rating moves on
        ana.keyboard.press(key)
    second = expect_item(ana, study, "ana", 1, rated=1)
    ana.locator("#rate-prompt").get_by_text("2", exact=True).click()  # mouse
    ana.locator("#rate-faceid").get_by_text("0", exact=True).click()
    ana.locator("#rate-quality").get_by_text("1", exact=True).click()
    third = expect_item(ana, study, "ana", 2, rated=2)
    ana.keyboard.press("5")
    expect(ana.locator("#progress")).to_contain_text("3 of 4")
    ana.wait_for_function("() => document.querySelector('#rate-prompt input:checked') !== null")
    assert study.db.scores("ana", third) == {"prompt": 5}  # saved at once, before the image is complete

    ana.reload()  # the browser remembers the rater; the page continues where they stopped
    expect_item(ana, study, "ana", 2, rated=2)
    expect(ana.locator("#rate-prompt input:checked")).to_have_count(1)
    ana.keyboard.press("1")  # the first empty criterion is now FaceID
    ana.keyboard.press("2")
    fourth = expect_item(ana, study, "ana", 3, rated=3)
    ana.keyboard.press("ArrowLeft")  # back: the stored ratings are shown again
    expect_item(ana, study, "ana", 2, rated=3)
    expect(ana.locator("#rate-quality input:checked")).to_have_count(1)
    ana.locator("#skip").click()
    expect_item(ana, study, "ana", 3, rated=3)
    ana.keyboard.press("s")  # skip the last one
    expect(ana.locator("#progress")).to_contain_text("Done: 3 of 4 rated by ana")

    bo = open_as(browser, server, "bo")
    bo_first = expect_item(bo, study, "bo", 0, rated=0)
    for key in "012":
        bo.keyboard.press(key)
    expect_item(bo, study, "bo", 1, rated=1)
    bo.context.close()
    bo = open_as(browser, server, "bo")  # another browser, same name: continues at bo's own position
    expect_item(bo, study, "bo", 1, rated=1)

    assert study.db.scores("ana", first) == {"prompt": 4, "faceid": 5, "quality": 3}
    assert study.db.scores("ana", second) == {"prompt": 2, "faceid": 0, "quality": 1}
    assert study.db.scores("ana", third) == {"prompt": 5, "faceid": 1, "quality": 2}
    assert study.db.scores("ana", fourth) == {}
    assert study.db.scores("bo", bo_first) == {"prompt": 0, "faceid": 1, "quality": 2}
    assert len(study.db.ratings()) == 12
    assert (study.db.position("ana"), study.db.position("bo")) == (4, 1)
