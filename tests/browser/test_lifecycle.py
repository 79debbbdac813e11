"""Acceptance 5 and the instance API: destroy + re-init (what React/Vue wrappers do on re-render),
double clicks, reset, showCaptcha/verify, keyboard use, and using captchala.js without the loader."""

from __future__ import annotations

import pytest

from tests.browser.helpers import events, init_script, wait_event

pytestmark = pytest.mark.browser

REMOUNT = """
loadCaptchala(function () {
  var generation = 0;
  function mount() {
    var n = ++generation;
    return Captchala.init({appKey: 'demo_app', product: '%(product)s', action: 'login'})
      .onReady(function () { record('ready', n); })
      .onSuccess(function (res) { record('success', n); })
      .onError(function (err) { record('error', err); })
      %(mount)s;
  }
  window.captcha = mount();
  window.captcha.destroy();          // StrictMode: mount, unmount, mount again at once
  window.captcha = mount();
  window.rerender = function () { window.captcha.destroy(); window.captcha = mount(); return generation; };
});
"""


@pytest.mark.parametrize("product", ["embed", "popup", "bind"])
def test_destroy_and_reinit_leaves_one_widget_and_no_duplicate_callbacks(page, emulator, page_server, product):
    mount = ".bindTo('#btn')" if product == "bind" else ".appendTo('#captcha')"
    body = '<div id="captcha"></div><button id="btn" type="button">Send</button>'
    url = page_server.write(f"remount-{product}.html",
                            emulator.page("remount", REMOUNT % {"product": product, "mount": mount}, body=body))
    page.goto(url)
    wait_event(page, "ready")
    last = page.evaluate("window.rerender(), window.rerender()")  # the middle one dies before it is ready
    page.wait_for_function("n => window.events.some(e => e.type === 'ready' && e.value === n)", arg=last)

    assert events(page, "ready") == [2, last]  # destroyed before their init answered: silent
    widgets = page.get_by_test_id("captchala-emulator-widget")
    assert widgets.count() == 1
    if product == "embed":
        assert page.locator("#captcha > *").count() == 1
    elif product == "popup":
        page.locator("#captcha .cle-trigger").click()
    else:
        page.click("#btn")
    assert page.locator(".cle-overlay:not([hidden])").count() == (0 if product == "embed" else 1)
    page.get_by_test_id("captchala-emulator-solve").click()
    assert wait_event(page, "success") == [last]
    assert events(page, "error") == []
    assert page.evaluate("document.querySelectorAll('[data-captchala-emulator-bound]').length") == (
        1 if product == "bind" else 0)


def test_double_click_yields_one_token(page, emulator, page_server):
    solve_requests = []
    page.on("request", lambda r: solve_requests.append(r) if r.url.endswith("/v1/challenge/solve") else None)
    options = "appKey: 'demo_app', product: 'embed', action: 'login'"
    page.goto(page_server.write("double-click.html", emulator.page("double click", init_script(options))))
    wait_event(page, "ready")
    solve = page.get_by_test_id("captchala-emulator-solve")
    solve.dblclick()
    page.evaluate("document.querySelector('[data-testid=captchala-emulator-solve]').click()")  # a third, scripted
    [result] = wait_event(page, "success")
    assert len(solve_requests) == 1
    assert solve.is_disabled()
    assert emulator.validate(result["token"])["data"]["valid"] is True


def test_reset_hands_out_a_second_token(page, emulator, page_server):
    options = "appKey: 'demo_app', product: 'embed', action: 'login'"
    page.goto(page_server.write("reset.html", emulator.page("reset", init_script(options))))
    wait_event(page, "ready")
    solve = page.get_by_test_id("captchala-emulator-solve")
    solve.click()
    wait_event(page, "success")
    page.evaluate("window.captcha.reset()")
    page.wait_for_function("document.querySelector('[data-testid=captchala-emulator-widget]')"
                           ".dataset.state === 'ready'")
    solve.click()
    first, second = wait_event(page, "success", 2)
    assert first["token"] != second["token"]
    for result in (first, second):
        assert emulator.validate(result["token"])["data"]["valid"] is True
    assert events(page, "ready") == [None]  # onReady once per instance


@pytest.mark.parametrize("method", ["showCaptcha", "verify"])
def test_show_captcha_opens_the_popup_without_a_mount(page, emulator, page_server, method):
    """Flarum's composer: init, wait for nothing, then showCaptcha()."""
    options = "appKey: 'demo_app', product: 'popup', action: 'forum_post'"
    script = init_script(options, mount="", extra=f"window.captcha.{method}();")
    page.goto(page_server.write(f"show-{method}.html", emulator.page(method, script)))
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    assert dialog.get_by_test_id("captchala-emulator-solve").evaluate("b => b === document.activeElement")
    page.keyboard.press("Enter")
    [result] = wait_event(page, "success")
    assert result["action"] == "forum_post"
    assert not dialog.is_visible()


def test_embed_widget_is_operable_with_the_keyboard(page, emulator, page_server):
    options = "appKey: 'demo_app', product: 'embed', action: 'login'"
    body = '<label>Name <input id="name"></label><div id="captcha"></div>'
    page.goto(page_server.write("keyboard-embed.html", emulator.page("keyboard", init_script(options), body=body)))
    wait_event(page, "ready")
    page.focus("#name")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.testid") == "captchala-emulator-solve"
    page.keyboard.press("Enter")
    assert wait_event(page, "success")[0]["token"].startswith("pt_")


def test_popup_is_operable_with_the_keyboard(page, emulator, page_server):
    options = "appKey: 'demo_app', product: 'popup', action: 'login'"
    body = '<label>Name <input id="name"></label><div id="captcha"></div>'
    page.goto(page_server.write("keyboard-popup.html", emulator.page("keyboard", init_script(options), body=body)))
    wait_event(page, "ready")
    page.focus("#name")
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # the trigger is a real button
    page.get_by_role("dialog").wait_for()
    page.keyboard.press("Enter")
    wait_event(page, "success")


DIRECT = """
function mount() {
  window.captcha = Captchala.init({appKey: 'demo_app', product: 'embed', action: 'login'})
    .onReady(function () { record('ready'); })
    .onSuccess(function (res) { record('success', res); })
    .onError(function (err) { record('error', err); })
    .appendTo('#captcha');
}
"""


def test_sdk_works_when_included_directly(page, emulator, page_server):
    head = f'<script src="{emulator.url}/captchala.js"></script>'
    page.goto(page_server.write("direct.html", emulator.page("direct", DIRECT + "mount();", head=head)))
    wait_event(page, "ready")
    assert page.locator('link[href*="captchala.css"]').count() == 1
    page.get_by_test_id("captchala-emulator-solve").click()
    assert emulator.validate(wait_event(page, "success")[0]["token"])["data"]["valid"] is True


def test_sdk_works_for_wrappers_that_poll_for_window_captchala(page, emulator, page_server):
    """@captcha-la/react and /vue: link the CDN's captchala.css, find script[src*="captchala.js"]
    (the one the README tells you to add), poll window.Captchala every 50 ms."""
    page.route("https://cdn.captcha-cdn.net/**", lambda route: route.abort("internetdisconnected"))
    body = ('<link rel="stylesheet" href="https://cdn.captcha-cdn.net/captchala.css">'
            f'<div id="captcha"></div><script async crossorigin="anonymous" '
            f'src="{emulator.url}/captchala.js"></script>')
    poll = DIRECT + """
var found = document.querySelector('script[src*="captchala.js"]');
var poller = setInterval(function () {
  if (found && window.Captchala) { clearInterval(poller); mount(); }
}, 50);
"""
    page.goto(page_server.write("wrapper.html", emulator.page("wrapper", poll, body=body, head="")))
    wait_event(page, "ready")
    assert page.locator(f'link[href="{emulator.url}/captchala.css"]').count() == 1
    widget = page.get_by_test_id("captchala-emulator-widget")
    page.wait_for_function("w => getComputedStyle(w).borderTopStyle === 'dashed'", arg=widget.element_handle())
    page.get_by_test_id("captchala-emulator-solve").click()
    assert wait_event(page, "success")[0]["token"].startswith("pt_")


def test_theme_is_accepted(page, emulator, page_server):
    script = """
loadCaptchala(function () {
  Captchala.init({appKey: 'demo_app', product: 'embed', theme: 'dark'}).appendTo('#a');
  Captchala.init({appKey: 'demo_app', product: 'embed', theme: {custom: {color: '#ff0066', radius: 2}}})
    .onReady(function () { record('ready'); }).appendTo('#b');
});"""
    body = '<div id="a"></div><div id="b"></div>'
    page.goto(page_server.write("theme.html", emulator.page("theme", script, body=body)))
    wait_event(page, "ready")
    assert "cle--dark" in page.locator("#a .cle").get_attribute("class")
    assert page.locator("#b .cle").evaluate("w => w.style.getPropertyValue('--cle-accent')") == "#ff0066"


def test_missing_container_is_reported(page, emulator, page_server):
    options = "appKey: 'demo_app', product: 'embed'"
    page.goto(page_server.write("missing.html", emulator.page("missing", init_script(options, ".appendTo('#nope')"))))
    assert wait_event(page, "error")[0].endswith("(invalid_container)")
