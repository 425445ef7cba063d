"""Fixtures of the web tests: the tiny demo (built once) and one torch thread for every test; for every test
that drives a page, the system Chromium, one headless browser per session, a fresh `page` per test, and a
screenshot + HTML of that page when its test fails.

Where Chromium is missing the browser tests are skipped with the one-line hint below, except under CI
(``CI=true``, which `.ci/run` exports): there they fail, so a CI run always drives a real browser.
Never a downloaded browser: the Debian package ``chromium`` (`make test` installs it when run as root),
or any Chromium named by ``CHROMIUM=/path/to/chromium``.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from browser_wait import PAGE_TIMEOUT_MS

CHROMIUM_HINT = (
    "chromium not found: install it as root with `apt-get install chromium` (Debian; `make test` does this "
    "when run as root) or point CHROMIUM=/path/to/chromium at one"
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path("outputs") / "test-artifacts"  # under the rootdir


def running_in_ci() -> bool:
    """True where the CI marker ``CI`` is set to true/1/yes (GitHub, GitLab and `.ci/run` set ``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@pytest.fixture(autouse=True)
def _web_tests_on_one_torch_thread(one_torch_thread):
    """The demo's tiny models (and the app server's worker threads) run on one torch thread: on 2 busy cores
    two threads per process spend most of their time waiting for each other (several times slower)."""


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """The tiny `Demo` (see `web_tiny_demo`), built once; its methods load on first use and are then kept."""
    from web_tiny_demo import tiny_demo

    return tiny_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of the system Chromium; skips the test with `CHROMIUM_HINT` where there is none (fails under CI)."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if path:
        return path
    if running_in_ci():
        pytest.fail(f"{CHROMIUM_HINT} (CI=true: browser tests must run, not skip)", pytrace=False)
    pytest.skip(CHROMIUM_HINT)


@pytest.fixture(scope="session")
def browser(chromium: str):
    """One headless Chromium for the session, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh page with `PAGE_TIMEOUT_MS` for every wait (``expect`` too); saved to `ARTIFACTS` if its test fails."""
    from playwright.sync_api import expect

    expect.set_options(timeout=PAGE_TIMEOUT_MS)
    page = browser.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    yield page
    page.close()


def save_page(page, stem: Path) -> str:
    """Write ``stem.png`` (full-page screenshot) and ``stem.html`` (the DOM now); the lines to report."""
    from playwright.sync_api import Error

    stem.parent.mkdir(parents=True, exist_ok=True)
    try:
        page.screenshot(path=f"{stem}.png", full_page=True, timeout=30_000)
        Path(f"{stem}.html").write_text(page.content(), encoding="utf-8")
    except Error as err:
        return f"could not save the page: {err}"
    return f"screenshot: {stem.resolve()}.png\nhtml: {stem.resolve()}.html"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """On a failed setup or call of a test that has a `page`, save it and name the files in the report."""
    report = yield
    page = getattr(item, "funcargs", {}).get("page")
    if report.failed and report.when in ("setup", "call") and page is not None:
        stem = item.config.rootpath / ARTIFACTS / re.sub(r"[^\w.-]+", "_", item.name)
        report.sections.append(("browser artifacts", save_page(page, stem)))
    return report
