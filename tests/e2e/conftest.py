"""Chromium for the browser tests: Debian's build, headless, driven by Playwright's sync API."""

import pytest
from django.db import connections
from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture
def browser(monkeypatch):
    # The sync Playwright API keeps an event loop running in this thread; the test's own ORM calls
    # are still plain sync calls, so Django's async guard is lifted for this process only.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        # ORM calls made while Playwright's loop ran opened their own connection; close it while
        # that loop still runs (afterwards it is out of reach) so the test database can be dropped.
        connections.close_all()
        chromium.close()
    connections.close_all()
