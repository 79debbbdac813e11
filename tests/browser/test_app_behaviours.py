"""Acceptance 4: the built-in apps' widget behaviour, seen by the page through its callbacks;
and the fallback to the bypass worker (offline_ tokens) when the main API is down."""

from __future__ import annotations

import pytest

from tests.browser.helpers import events, init_script, wait_event

pytestmark = pytest.mark.browser


def open_app_page(page, emulator, page_server, app_key: str, product: str = "embed") -> str:
    options = f"appKey: '{app_key}', product: '{product}', action: 'checkout'"
    url = page_server.write(f"app-{app_key}-{product}.html", emulator.page(app_key, init_script(options)))
    page.goto(url)
    return url


def test_auto_pass_app_yields_a_token_without_a_click(page, emulator, page_server):
    url = open_app_page(page, emulator, page_server, "auto_pass_app", product="popup")
    [result] = wait_event(page, "success")
    assert result["token"].startswith("pt_")
    assert not page.get_by_role("dialog").is_visible()  # nobody opened anything
    answer = emulator.validate(result["token"], app_key="auto_pass_app")["data"]
    assert answer["valid"] is True and answer["action"] == "checkout"
    assert answer["captcha_args"]["referer"] == url


def test_always_fail_app_reports_invalid_token_after_the_click(page, emulator, page_server):
    open_app_page(page, emulator, page_server, "always_fail_app")
    wait_event(page, "ready")
    page.get_by_test_id("captchala-emulator-solve").click()
    [error] = wait_event(page, "error")
    assert error.endswith("(invalid_token)")
    assert events(page, "success") == []
    widget = page.get_by_test_id("captchala-emulator-widget")
    assert widget.get_attribute("data-state") == "failed"
    assert "(invalid_token)" in widget.inner_text()


def test_disabled_app_is_refused(page, emulator, page_server):
    open_app_page(page, emulator, page_server, "disabled_app")
    [error] = wait_event(page, "error")
    assert error.endswith("(app_disabled)")
    assert events(page, "ready") == []


def test_degraded_app_hands_out_degraded_tokens(page, emulator, page_server):
    open_app_page(page, emulator, page_server, "degraded_app")
    wait_event(page, "ready")
    page.get_by_test_id("captchala-emulator-solve").click()
    [result] = wait_event(page, "success")
    assert result["token"].startswith("dg_") and result["type"] == "degraded"
    answer = emulator.validate(result["token"], app_key="degraded_app")["data"]
    assert answer == {"valid": False, "degraded": True, "reason": "quota_exhausted", "action": "checkout"}


def test_unknown_app_key_is_refused(page, emulator, page_server):
    open_app_page(page, emulator, page_server, "no_such_app")
    assert wait_event(page, "error")[0].endswith("(invalid_app_key)")


@pytest.mark.parametrize("failing", ["init", "solve"])
def test_main_api_down_falls_back_to_an_offline_token(page, emulator, page_server, failing):
    """What the fault effect main_down looks like: init (HTML 503) or solve (connection reset) fail."""
    if failing == "init":
        page.route("**/v1/challenge/init", lambda route: route.fulfill(
            status=503, content_type="text/html", body="<html><body>502 Bad Gateway</body></html>"))
    else:
        page.route("**/v1/challenge/solve", lambda route: route.abort("connectionreset"))
    url = open_app_page(page, emulator, page_server, "demo_app")
    wait_event(page, "ready")
    page.get_by_test_id("captchala-emulator-solve").click()
    [result] = wait_event(page, "success")

    assert result["token"].startswith("offline_") and result["type"] == "offline"
    assert emulator.validate(result["token"])["data"]["error"] == "invalid_token"  # main refuses offline_
    answer = emulator.validate(result["token"], path="/api/validate")["data"]
    assert answer["valid"] is True and answer["action"] == "checkout"
    assert answer["captcha_args"]["referer"] == url
    assert "Offline mode" in page.get_by_test_id("captchala-emulator-widget").inner_text()


def test_main_and_bypass_down_reports_request_failed(page, emulator, page_server):
    page.route("**/v1/challenge/*", lambda route: route.abort("connectionrefused"))
    open_app_page(page, emulator, page_server, "demo_app")
    [error] = wait_event(page, "error")
    assert error.endswith("(request_failed)")


def answer_init_with(page, **changes) -> None:
    """Let the real init through, then change the widget behaviour it answers (mode, delay_ms)."""
    def handler(route):
        response = route.fetch()
        body = response.json()
        body["data"].update(changes)
        route.fulfill(response=response, json=body)

    page.route("**/v1/challenge/init", handler)


def test_widget_waits_delay_ms_before_solving_by_itself(page, emulator, page_server):
    answer_init_with(page, mode="auto", delay_ms=5000)
    page.clock.install()
    open_app_page(page, emulator, page_server, "demo_app")
    wait_event(page, "ready")
    page.clock.run_for(4_000)
    assert events(page, "success") == []
    assert page.get_by_test_id("captchala-emulator-widget").get_attribute("data-state") == "verifying"
    page.clock.run_for(1_500)
    assert wait_event(page, "success")[0]["token"].startswith("pt_")


def test_widget_that_never_solves_keeps_spinning(page, emulator, page_server):
    solves = []
    page.on("request", lambda r: solves.append(r) if "/v1/challenge/solve" in r.url else None)
    answer_init_with(page, mode="never")
    page.clock.install()
    open_app_page(page, emulator, page_server, "demo_app")
    wait_event(page, "ready")
    page.get_by_test_id("captchala-emulator-solve").click()
    page.clock.run_for(120_000)
    widget = page.get_by_test_id("captchala-emulator-widget")
    assert widget.get_attribute("data-state") == "verifying"
    assert solves == [] and events(page, "success") == [] and events(page, "error") == []


@pytest.mark.parametrize("profile, prefix, path", [
    ("main-down", "offline_", "/api/validate"),   # init/solve answer 503: the bypass worker steps in
    ("degraded-quota", "dg_", "/v1/validate"),     # a fault rule forces degraded tokens
])
def test_fault_profiles_reach_the_widget(page, emulator, page_server, profile, prefix, path):
    emulator.use_profile(profile)
    try:
        open_app_page(page, emulator, page_server, "demo_app")
        wait_event(page, "ready")
        page.get_by_test_id("captchala-emulator-solve").click()
        [result] = wait_event(page, "success")
    finally:
        emulator.use_profile(None)
    assert result["token"].startswith(prefix)
    answer = emulator.validate(result["token"], path=path)["data"]
    assert answer.get("valid") is True or answer.get("degraded") is True
