"""The built-in profiles' browser-side effects, in real Chromium against real gunicorn: the user
never sees the challenge (loader 404, SDK blocked, SDK too slow), the challenge is shown but no
token comes (init refused, solve expired or unreadable, wrong app key), and provider outages
the widget handles (main API down: offline_ token for the backup; quota spent: dg_ token)."""

from __future__ import annotations

import pytest
import requests

from tests.browser.helpers import events, init_script, wait_event

pytestmark = pytest.mark.browser

LOAD_ONLY = """
loadCaptchala(function (C) { record('ready', typeof C.init); },
              function (err) { record('loader-error', String(err && err.message || err)); });
"""
EMBED = init_script("appKey: 'demo_app', product: 'embed', action: 'login'")


@pytest.fixture
def profile(emulator):
    """Switch a built-in profile on for one test (the shared emulator is reset, not restarted)."""
    def use(name: str) -> None:
        r = requests.put(emulator.url + "/_emulator/profile", json={"name": name}, timeout=10)
        assert r.status_code == 200, r.text

    yield use
    requests.delete(emulator.url + "/_emulator/profile", timeout=10)


def fault_of(emulator, endpoint: str) -> list:
    r = requests.get(emulator.url + "/_emulator/requests", params={"endpoint": endpoint}, timeout=10)
    return [e["fault"] for e in r.json()["requests"]]


def test_loader_404_means_no_load_captchala_at_all(page, emulator, page_server, profile):
    profile("loader-404")
    head = f'<script src="{emulator.url}/captchala-loader.js" onerror="window.loaderTagFailed = true"></script>'
    script = "window.addEventListener('load', function () { record('has-loader', typeof window.loadCaptchala); });"
    page.goto(page_server.write("fault-loader-404.html", emulator.page("loader 404", script, head=head)))
    assert wait_event(page, "has-loader") == ["undefined"]
    assert page.evaluate("window.loaderTagFailed") is True
    assert page.get_by_test_id("captchala-emulator-widget").count() == 0
    assert fault_of(emulator, "loader") == ["loader-404/loader-not-found"]


def test_sdk_blocked_reaches_the_loaders_on_error(page, emulator, page_server, profile):
    profile("sdk-blocked")
    page.goto(page_server.write("fault-sdk-blocked.html", emulator.page("sdk blocked", LOAD_ONLY)))
    [error] = wait_event(page, "loader-error")
    assert "could not load" in error and "captchala.js" in error
    assert events(page, "ready") == []


def test_slow_loader_gives_up_after_ten_seconds(page, emulator, page_server, profile):
    profile("slow-loader")
    page.clock.install()  # the page's timers run on a controllable clock: no waiting for 10 s
    url = page_server.write("fault-slow-loader.html", emulator.page("slow sdk", LOAD_ONLY))
    page.goto(url, wait_until="domcontentloaded")  # the held-back SDK also holds the load event
    page.wait_for_function("document.querySelector('script[src*=\"captchala.js\"]') !== null")
    page.clock.run_for(10_500)
    [error] = wait_event(page, "loader-error")
    assert "within 10 s" in error
    assert events(page, "ready") == []


@pytest.mark.parametrize(("name", "code", "click"), [
    ("challenge-init-rejected", "rate_limit_exceeded", False),
    ("wrong-app-key", "invalid_app_key", False),
    ("challenge-expired", "challenge_expired", True),
    ("challenge-unreadable", "request_failed", True),
])
def test_challenge_shown_but_no_token(page, emulator, page_server, profile, name, code, click):
    profile(name)
    page.goto(page_server.write(f"fault-{name}.html", emulator.page(name, EMBED)))
    page.get_by_test_id("captchala-emulator-widget").wait_for()
    if click:
        wait_event(page, "ready")
        page.get_by_test_id("captchala-emulator-solve").click()
    [error] = wait_event(page, "error")
    assert error.endswith(f"({code})")
    assert events(page, "success") == []


def test_main_down_falls_back_to_an_offline_token_that_only_the_backup_accepts(page, emulator, page_server, profile):
    profile("main-down")
    page.goto(page_server.write("fault-main-down.html", emulator.page("main down", EMBED)))
    wait_event(page, "ready")
    page.get_by_test_id("captchala-emulator-solve").click()
    [result] = wait_event(page, "success")
    token = result["token"]
    assert token.startswith("offline_")
    assert fault_of(emulator, "challenge_init") == ["main-down/main-api-down"]
    main = requests.post(emulator.url + "/v1/validate", json={"pass_token": token},
                         headers={"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"}, timeout=10)
    assert main.status_code == 503  # the backend's first try fails with the main API ...
    assert emulator.validate(token, path="/api/validate")["data"]["valid"] is True  # ... the backup accepts
    requests.delete(emulator.url + "/_emulator/profile", timeout=10)
    assert emulator.validate(token)["data"] == {"valid": False, "error": "invalid_token"}  # never the main one


def test_degraded_quota_hands_out_dg_tokens(page, emulator, page_server, profile):
    profile("degraded-quota")
    page.goto(page_server.write("fault-degraded.html", emulator.page("degraded", EMBED)))
    wait_event(page, "ready")
    page.get_by_test_id("captchala-emulator-solve").click()
    [result] = wait_event(page, "success")
    assert result["token"].startswith("dg_")
    data = emulator.validate(result["token"])["data"]
    assert (data["valid"], data["degraded"], data["reason"]) == (False, True, "quota_exhausted")
