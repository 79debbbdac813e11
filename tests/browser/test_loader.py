"""Acceptance 6: the loader reports a captchala.js that cannot load (at once, or after 10 s of
nothing), and calls onReady once even when the page includes the loader twice."""

from __future__ import annotations

import pytest

from tests.browser.helpers import events, init_script, wait_event

pytestmark = pytest.mark.browser

LOAD_ONLY = """
loadCaptchala(function (C) { record('ready', typeof C.init); },
              function (err) { record('loader-error', String(err && err.message || err)); });
"""


@pytest.mark.parametrize("failure", ["abort", "404"])
def test_loader_on_error_when_the_sdk_cannot_be_loaded(page, emulator, page_server, failure):
    if failure == "abort":
        page.route("**/captchala.js", lambda route: route.abort("connectionrefused"))
    else:
        page.route("**/captchala.js", lambda route: route.fulfill(status=404, body="not found"))
    page.goto(page_server.write(f"loader-{failure}.html", emulator.page("loader error", LOAD_ONLY)))
    [error] = wait_event(page, "loader-error")
    assert "could not load" in error and "captchala.js" in error
    assert events(page, "ready") == []


def test_loader_on_error_after_ten_seconds_of_silence(page, emulator, page_server):
    stalled = []
    page.route("**/captchala.js", lambda route: stalled.append(route))  # never answered
    page.clock.install()
    url = page_server.write("loader-timeout.html", emulator.page("loader timeout", LOAD_ONLY))
    page.goto(url, wait_until="domcontentloaded")  # the stalled script holds the load event back
    page.wait_for_function("document.querySelector('script[src*=\"captchala.js\"]') !== null")
    page.clock.run_for(9_000)
    assert events(page, "loader-error") == []
    page.clock.run_for(1_500)
    [error] = wait_event(page, "loader-error")
    assert "within 10 s" in error
    for route in stalled:
        route.abort()


def test_loader_included_twice_calls_on_ready_once_and_loads_the_sdk_once(page, emulator, page_server):
    sdk_requests = []
    page.on("request", lambda r: sdk_requests.append(r.url) if r.url.endswith("/captchala.js") else None)
    loader = f'<script src="{emulator.url}/captchala-loader.js"></script>'
    script = """
loadCaptchala(function () { record('ready', 'first'); });
var again = document.createElement('script');  // a third copy, arriving after the first call
again.src = 'EMULATOR_URL/captchala-loader.js';
again.onload = function () { record('loaded-again'); };
document.head.appendChild(again);
""".replace("EMULATOR_URL", emulator.url) + init_script("appKey: 'demo_app', product: 'embed', action: 'login'") + """
window.later = function () { loadCaptchala(function () { record('ready', 'later'); }); };
"""
    # two loader tags, as with two CMS widgets on one page
    body = f'<div id="captcha"></div>{loader}'
    page.goto(page_server.write("loader-twice.html", emulator.page("loader twice", script, body=body)))
    wait_event(page, "ready", 2)
    wait_event(page, "loaded-again")
    page.evaluate("window.later()")
    page.wait_for_function("window.events.some(e => e.value === 'later')")
    assert sorted(v for v in events(page, "ready") if v) == ["first", "later"]
    assert events(page, "ready").count(None) == 1  # the widget's own onReady
    assert len(sdk_requests) == 1
    assert page.evaluate("document.querySelectorAll('script[src*=\"captchala.js\"]').length") == 1
    assert page.evaluate("document.querySelectorAll('link[href*=\"captchala.css\"]').length") == 1
    assert page.get_by_test_id("captchala-emulator-widget").count() == 1


def test_loader_picks_up_a_captchala_js_the_page_already_included(page, emulator, page_server):
    sdk_requests = []
    page.on("request", lambda r: sdk_requests.append(r.url) if r.url.endswith("/captchala.js") else None)
    head = (f'<script src="{emulator.url}/captchala-loader.js"></script>'
            f'<script src="{emulator.url}/captchala.js" async></script>')
    page.goto(page_server.write("loader-and-sdk.html", emulator.page("both", LOAD_ONLY, head=head)))
    assert wait_event(page, "ready") == ["function"]
    assert len(sdk_requests) == 1
