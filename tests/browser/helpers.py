"""Helpers for the browser tests: the emulator and page-server handles, the demo-style page
template, and waiting for what a page recorded through its callbacks."""

from __future__ import annotations

import html
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import requests
from playwright.sync_api import Page

SECRET = "browser-test-secret"
SCREENSHOT_DIR_ENV = "CAPTCHALA_SCREENSHOT_DIR"  # scripts/readme-screenshots points it at docs/images


def screenshot_path(name: str) -> Path:
    """Where a test saves a screenshot: $CAPTCHALA_SCREENSHOT_DIR, else a temporary directory,
    so running the tests never changes tracked files."""
    chosen = os.environ.get(SCREENSHOT_DIR_ENV)
    folder = Path(chosen) if chosen else Path(tempfile.gettempdir()) / "captchala-emulator-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
CREDENTIALS = {
    "demo_app": "demo_secret", "auto_pass_app": "auto_pass_secret", "always_fail_app": "always_fail_secret",
    "server_token_app": "server_token_secret", "degraded_app": "degraded_secret",
    "disabled_app": "disabled_secret", "strict_ip_app": "strict_ip_secret",
}

# The vendor demo pages' shape: a loader tag, then loadCaptchala(function () { Captchala.init(...)... }).
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
{head}
</head><body>
<h1>{title}</h1>
{body}
<script>
window.events = [];
function record(type, value) {{ window.events.push({{type: type, value: value === undefined ? null : value}}); }}
{script}
</script>
</body></html>
"""


@dataclass
class PageServer:
    """Static pages on their own origin: http://127.0.0.1:<another port>/."""

    root: Path
    url: str

    def write(self, name: str, text: str) -> str:
        (self.root / name).write_text(text, encoding="utf-8")
        return f"{self.url}/{name}"


@dataclass
class Emulator:
    url: str

    def validate(self, token: str, app_key: str = "demo_app", path: str = "/v1/validate", **fields) -> dict:
        headers = {"X-App-Key": app_key, "X-App-Secret": CREDENTIALS[app_key]}
        r = requests.post(self.url + path, json={"pass_token": token, **fields}, headers=headers, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    def issue(self, app_key: str = "server_token_app", **fields) -> str:
        headers = {"X-App-Key": app_key, "X-App-Secret": CREDENTIALS[app_key]}
        r = requests.post(self.url + "/v1/server/challenge/issue", json={"action": "login", **fields},
                          headers=headers, timeout=10)
        assert r.json()["code"] == 0, r.text
        return r.json()["data"]["server_token"]

    def reset(self) -> None:
        requests.post(self.url + "/_emulator/reset", timeout=10).raise_for_status()

    def use_profile(self, name: str | None) -> None:
        """Switch the fault profile for every worker (None switches faults off)."""
        if name is None:
            r = requests.delete(self.url + "/_emulator/profile", timeout=10)
        else:
            r = requests.put(self.url + "/_emulator/profile", json={"name": name}, timeout=10)
        assert r.status_code == 200, r.text

    def page(self, title: str, script: str, body: str = '<div id="captcha"></div>', head: str | None = None) -> str:
        """A test page in the vendor demo style; `head` defaults to the emulator's loader tag."""
        if head is None:
            head = f'<script src="{self.url}/captchala-loader.js"></script>'
        return PAGE.format(title=html.escape(title), head=head, body=body, script=script)


def wait_event(page: Page, kind: str, count: int = 1) -> list:
    """Wait until the page recorded `count` events of this kind; return their values."""
    page.wait_for_function("([t, n]) => window.events.filter(e => e.type === t).length >= n", arg=[kind, count])
    return events(page, kind)


def events(page: Page, kind: str | None = None) -> list:
    recorded = page.evaluate("window.events")
    return [e["value"] for e in recorded if kind is None or e["type"] == kind]


def init_script(options: str, mount: str = ".appendTo('#captcha')", extra: str = "") -> str:
    """loadCaptchala(function () { Captchala.init({...}).onReady(...).onSuccess(...).onError(...).<mount> })."""
    return f"""
loadCaptchala(function () {{
  window.captcha = Captchala.init({{{options}}})
    .onReady(function () {{ record('ready'); }})
    .onSuccess(function (res) {{ record('success', res); }})
    .onError(function (err) {{ record('error', err); }})
    .onClose(function () {{ record('close'); }})
    {mount};
  {extra}
}}, function (err) {{ record('loader-error', String(err && err.message || err)); }});
"""
