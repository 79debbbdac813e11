"""The widget's languages: at least 8, chosen by `lang`, `auto` (the browser's language), or setLang."""

from __future__ import annotations

import pytest

from tests.browser.helpers import init_script, wait_event

pytestmark = pytest.mark.browser

LANGS = ["en", "zh-CN", "zh-TW", "ja", "ko", "es", "fr", "de", "pt-BR", "ru", "vi"]
ALIASES = {"xx-YY": "en", "zh-HK": "zh-TW", "zh": "zh-CN", "pt": "pt-BR", "de-AT": "de", "FR_ca": "fr"}
SPOT_CHECKS = {"en": "Click to verify", "ja": "クリックして認証", "de": "Zum Bestätigen klicken",
               "zh-CN": "点击验证", "fr": "Cliquez pour vérifier"}

MANY = """
loadCaptchala(function () {
  window.tags = %s;
  window.tags.forEach(function (tag, i) {
    var box = document.createElement('div');
    box.id = 'w' + i;
    document.body.appendChild(box);
    Captchala.init({appKey: 'demo_app', product: 'embed', lang: tag}).appendTo(box);
  });
  record('mounted');
});
"""


def labels(page) -> list[tuple[str, str]]:
    return page.evaluate("""() => window.tags.map((t, i) => {
        const w = document.querySelector('#w' + i + ' [data-testid=captchala-emulator-widget]');
        return [w.getAttribute('lang'), w.querySelector('[data-testid=captchala-emulator-solve]').innerText.trim()];
    })""")


def test_at_least_eight_languages_each_with_its_own_words(page, emulator, page_server):
    tags = LANGS + list(ALIASES)
    page.goto(page_server.write("langs.html", emulator.page("langs", MANY % tags)))
    wait_event(page, "mounted")
    assert page.evaluate("Captchala.languages") == LANGS
    found = labels(page)
    chosen = [lang for lang, _ in found]
    assert chosen == LANGS + list(ALIASES.values())
    words = dict(found[: len(LANGS)])
    assert len(set(words.values())) == len(LANGS) >= 8  # every language has its own text
    for lang, label in SPOT_CHECKS.items():
        assert words[lang] == label
    for widget in page.get_by_test_id("captchala-emulator-widget").all():
        assert "emulator" in widget.inner_text().lower()  # plainly labelled in every language


@pytest.mark.parametrize("context_options", [{"locale": "de-DE"}])
def test_lang_auto_follows_the_browser(page, emulator, page_server, context_options):
    options = "appKey: 'demo_app', product: 'embed', lang: 'auto'"
    page.goto(page_server.write("lang-auto.html", emulator.page("auto", init_script(options))))
    wait_event(page, "ready")
    widget = page.get_by_test_id("captchala-emulator-widget")
    assert widget.get_attribute("lang") == "de"
    assert "Zum Bestätigen klicken" in widget.inner_text()


def test_set_lang_switches_the_texts(page, emulator, page_server):
    options = "appKey: 'demo_app', product: 'popup', lang: 'en'"
    page.goto(page_server.write("set-lang.html", emulator.page("setLang", init_script(options))))
    wait_event(page, "ready")
    assert page.evaluate("window.captcha.setLang('ja') === window.captcha")  # chainable
    assert page.locator(".cle-trigger").inner_text().startswith("クリックして認証")
    assert page.get_by_test_id("captchala-emulator-widget").get_attribute("lang") == "ja"
