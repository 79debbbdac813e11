"""Issue 13 item 7: the README's one recipe solves every product (trigger if present, then solve),
the popup trigger has its data-testid, and the failure text does not repeat itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.helpers import init_script, wait_event
from tests.browser.test_products import BIND_BODY

pytestmark = pytest.mark.browser

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_recipe() -> dict:
    """The `solve_captcha` recipe exactly as the README shows it."""
    section = README.read_text(encoding="utf-8").split("### Solving the widget from browser tests", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "README.md (solve recipe)", "exec"), namespace)  # noqa: S102 - our own README
    return namespace


@pytest.mark.parametrize("product", ["popup", "float", "embed", "bind"])
def test_the_readme_recipe_solves_every_product(page, emulator, page_server, product):
    options = f"appKey: 'demo_app', product: '{product}', action: 'login', lang: 'en'"
    mount = ".bindTo('#btn')" if product == "bind" else ".appendTo('#captcha')"
    body = BIND_BODY if product == "bind" else '<div id="captcha"></div>'
    html = emulator.page(product, init_script(options, mount), body=body)
    page.goto(page_server.write(f"recipe-{product}.html", html))
    wait_event(page, "ready")
    readme_recipe()["solve_captcha"](page, bound_button="#btn")
    [result] = wait_event(page, "success")
    assert emulator.validate(result["token"])["data"]["valid"] is True


def test_the_popup_trigger_has_a_test_id(page, emulator, page_server):
    options = "appKey: 'demo_app', product: 'popup', action: 'login', lang: 'en'"
    page.goto(page_server.write("trigger.html", emulator.page("popup", init_script(options))))
    wait_event(page, "ready")
    assert page.get_by_test_id("captchala-emulator-trigger").inner_text().startswith("Click to verify")


def test_the_failure_text_does_not_repeat_itself(page, emulator, page_server):
    options = "appKey: 'always_fail_app', product: 'embed', action: 'login', lang: 'en'"
    page.goto(page_server.write("fail-text.html", emulator.page("fail", init_script(options))))
    wait_event(page, "ready")
    page.get_by_test_id("captchala-emulator-solve").click()
    wait_event(page, "error")
    status = page.get_by_test_id("captchala-emulator-widget").locator(".cle-status").inner_text()
    assert status == "Verification failed (invalid_token)"
