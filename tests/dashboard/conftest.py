from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.helpers import ServerProcess

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
"""Screenshots a person can look at after a run (git-ignored)."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium driven through Playwright (no bundled browser).

    Module-scoped: Playwright's sync API keeps an event loop running in the main thread
    while it is open, which would break later tests that call ``asyncio.run``.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield instance
        instance.close()


class Requests:
    """Every request a page makes, so a test can assert none leaves the machine."""

    def __init__(self, page: Any) -> None:
        self.urls: list[str] = []
        self.failed: list[str] = []
        page.on("request", lambda r: self.urls.append(r.url))
        # A fetch cut short by navigating away is not a failure of the page.
        page.on(
            "requestfailed",
            lambda r: None if "ERR_ABORTED" in (r.failure or "") else self.failed.append(r.url),
        )

    def assert_all_local(self, server: ServerProcess) -> None:
        own = urlsplit(server.url).netloc
        foreign = [
            u
            for u in self.urls
            if not u.startswith(("data:", "blob:")) and urlsplit(u).netloc != own
        ]
        assert self.urls, "the page made no request at all"
        assert foreign == [], f"requests left the server: {foreign}"


def sign_in(
    browser: Any, server: ServerProcess, client_id: str, secret: str
) -> tuple[Any, Requests]:
    """A new page signed in through the login form, its requests recorded."""
    page = browser.new_page(viewport={"width": 1360, "height": 1000})
    seen = Requests(page)
    page.goto(f"{server.url}/login")
    page.fill("#client_id", client_id)
    page.fill("#client_secret", secret)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/")
    return page, seen


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under ``test-artifacts/``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    return path
