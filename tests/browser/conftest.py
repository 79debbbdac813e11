"""Real headless Chromium against a real gunicorn emulator, with the test pages served from
another local origin (a second port), so every SDK call crosses origins and exercises CORS.

One emulator, one page server and one Chromium per session; a fresh browser context per test,
and the emulator's state reset before each test."""

from __future__ import annotations

import functools
import http.server
import threading

import pytest
from playwright.sync_api import sync_playwright

from tests.browser.helpers import CHROMIUM_ARGS, SECRET, Emulator, PageServer
from tests.support.servers import start_emulator


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    db = tmp_path_factory.mktemp("browser-emulator") / "state.db"
    server = start_emulator("--store", f"sqlite:///{db}", "--secret", SECRET, "--workers", "2", "--threads", "8")
    try:
        yield Emulator(server.url)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def page_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("pages")
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, name="test-pages", daemon=True)
    thread.start()
    try:
        yield PageServer(root, f"http://127.0.0.1:{httpd.server_address[1]}")
    finally:
        httpd.shutdown()
        thread.join(5)
        httpd.server_close()


@pytest.fixture(scope="session")
def chromium():
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def context_options() -> dict:
    """Override in a test module (or parametrize) to change locale etc."""
    return {"locale": "en-US"}


@pytest.fixture
def page(chromium, emulator, context_options):
    emulator.reset()
    context = chromium.new_context(**context_options)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"uncaught JavaScript errors: {errors}"
