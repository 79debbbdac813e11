"""Acceptance 3: server tokens as the browser sees them (bound IP, use counts, expiry + refresh, required)."""

from __future__ import annotations

import json
import time

import pytest

from emulator.domain.tokens import TokenSigner
from tests.browser.helpers import SECRET, events, init_script, wait_event

pytestmark = pytest.mark.browser


def sct_page(emulator, page_server, name: str, server_token: str | None, extra_options: str = "") -> str:
    options = "appKey: 'server_token_app', product: 'embed', action: 'login'"
    if server_token is not None:
        options += f", serverToken: {json.dumps(server_token)}"
    return page_server.write(name, emulator.page(name, init_script(options + extra_options)))


def solve(page) -> dict:
    wait_event(page, "ready")
    page.get_by_test_id("captchala-emulator-solve").click()
    return wait_event(page, "success")[0]


def test_server_token_bound_to_the_browser_ip_succeeds_and_carries_the_uid(page, emulator, page_server):
    sct = emulator.issue(binding_ip="127.0.0.1", bind_uid="user-42")
    page.goto(sct_page(emulator, page_server, "sct-ok.html", sct))
    result = solve(page)
    answer = emulator.validate(result["token"], app_key="server_token_app")
    assert answer["data"]["valid"] is True
    assert answer["data"]["uid"] == "user-42" and answer["data"]["action"] == "login"


def test_server_token_bound_to_another_ip_is_refused(page, emulator, page_server):
    sct = emulator.issue(binding_ip="203.0.113.9")
    page.goto(sct_page(emulator, page_server, "sct-other-ip.html", sct))
    [error] = wait_event(page, "error")
    assert error.endswith("(server_token_binding_mismatch)")
    assert events(page, "ready") == [] and events(page, "success") == []


def test_server_token_with_one_use_works_once(page, emulator, page_server):
    sct = emulator.issue(max_uses=1)
    url = sct_page(emulator, page_server, "sct-once.html", sct)
    page.goto(url)
    assert solve(page)["token"].startswith("pt_")

    page.goto(url)  # the same sct_ a second time
    [error] = wait_event(page, "error")
    assert error.endswith("(server_token_exhausted)")


def test_expired_server_token_asks_for_a_fresh_one_once_and_succeeds(page, emulator, page_server):
    signer = TokenSigner(SECRET)  # the session emulator signs with this secret
    expired = signer.encode(signer.mint_server(app_key="server_token_app", action="login",
                                               now=time.time() - 600, ttl=60, max_uses=1))
    fresh = emulator.issue(bind_uid="fresh-user")
    ask = (", onServerTokenExpired: function () { record('asked'); "
           "return new Promise(function (resolve) { "
           f"setTimeout(function () {{ resolve({json.dumps(fresh)}); }}, 20); }}); }}")
    page.goto(sct_page(emulator, page_server, "sct-expired.html", expired, ask))
    result = solve(page)
    assert len(events(page, "asked")) == 1
    assert events(page, "error") == []
    assert emulator.validate(result["token"], app_key="server_token_app")["data"]["uid"] == "fresh-user"


def test_expired_server_token_without_a_fresh_one_reports_the_expiry(page, emulator, page_server):
    signer = TokenSigner(SECRET)
    expired = signer.encode(signer.mint_server(app_key="server_token_app", action="login",
                                               now=time.time() - 600, ttl=60, max_uses=1))
    ask = ", onServerTokenExpired: function () { record('asked'); return null; }"
    page.goto(sct_page(emulator, page_server, "sct-expired-none.html", expired, ask))
    [error] = wait_event(page, "error")
    assert error.endswith("(server_token_expired)") and len(events(page, "asked")) == 1


def test_server_token_app_without_a_server_token_is_refused(page, emulator, page_server):
    page.goto(sct_page(emulator, page_server, "sct-missing.html", None))
    [error] = wait_event(page, "error")
    assert error.endswith("(server_token_required)")
    assert page.get_by_test_id("captchala-emulator-widget").get_attribute("data-state") == "failed"
