"""Acceptance 5 of issue 6: a true drop-in over HTTPS. The emulator runs with `--tls auto`;
Chromium maps the production host names to it (`--host-resolver-rules`) and trusts the generated
CA (by its key, `--ignore-certificate-errors-spki-list`); a page with the unmodified production
loader URL gets a token, which then validates at https://apiv1.captcha.la/v1/validate from
Python with the name resolved to 127.0.0.1, SNI and Host kept, and the CA verified."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.browser.helpers import CHROMIUM_ARGS, init_script, wait_event
from tests.support.resolve import resolve_to
from tests.support.servers import start_emulator

pytestmark = pytest.mark.browser

PRODUCTION_LOADER = "https://cdn.captcha-cdn.net/captchala-loader.js"
PRODUCTION_API = "https://apiv1.captcha.la"
MAPPED_HOSTS = ("cdn.captcha-cdn.net", "apiv1.captcha.la")
DEMO = {"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"}


@pytest.fixture(scope="module")
def tls_emulator(tmp_path_factory):
    state = tmp_path_factory.mktemp("tls-emulator")
    server = start_emulator("--tls", "auto", "--tls-dir", str(state / "tls"), "--store",
                            f"sqlite:///{state / 'state.db'}", "--workers", "1", "--threads", "8")
    try:
        assert server.url.startswith("https://")
        banner = "".join(server.output)
        ca = state / "tls" / "ca.pem"
        assert str(ca) in banner  # the banner tells the user which CA to trust
        yield server, ca, int(server.url.rsplit(":", 1)[1])
    finally:
        server.stop()


def spki_hash(pem: Path) -> str:
    """Base64 SHA-256 of a certificate's public key: what Chromium's SPKI allow-list wants."""
    cert = x509.load_pem_x509_certificate(pem.read_bytes())
    der = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


@pytest.fixture(scope="module")
def mapped_browser(chromium, tls_emulator):
    """A second Chromium from the session's Playwright, with the production names mapped here."""
    _, ca, port = tls_emulator
    rules = ", ".join(f"MAP {host}:443 127.0.0.1:{port}" for host in MAPPED_HOSTS)
    browser = chromium.browser_type.launch(
        executable_path="/usr/bin/chromium",
        args=[*CHROMIUM_ARGS, f"--host-resolver-rules={rules}",
              f"--ignore-certificate-errors-spki-list={spki_hash(ca)}"])
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def resolve_to_emulator(tls_emulator):
    """Python's side of the host mapping: apiv1.captcha.la:443 connects to the emulator while
    requests keeps the name for SNI, Host and certificate verification."""
    _, _, port = tls_emulator
    with resolve_to({(host, 443): ("127.0.0.1", port) for host in MAPPED_HOSTS}):
        yield


def test_the_production_loader_url_gets_a_token_that_validates_over_https(mapped_browser, tls_emulator, page_server,
                                                                         resolve_to_emulator):
    _, ca, _ = tls_emulator
    script = init_script("appKey: 'demo_app', product: 'embed', action: 'login'")
    page_html = (f'<!doctype html><html><head><script src="{PRODUCTION_LOADER}"></script></head><body>'
                 f'<div id="captcha"></div><script>window.events = [];'
                 f'function record(t, v) {{ window.events.push({{type: t, value: v === undefined ? null : v}}); }}'
                 f'{script}</script></body></html>')
    url = page_server.write("tls-dropin.html", page_html)
    context = mapped_browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(url)
        wait_event(page, "ready")
        page.get_by_test_id("captchala-emulator-solve").click()
        result = wait_event(page, "success")[0]
        loaded = page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
    finally:
        context.close()
    assert PRODUCTION_LOADER in loaded
    assert any(name.startswith("https://cdn.captcha-cdn.net/v1/challenge/") for name in loaded)
    token = result["token"]

    answer = requests.post(PRODUCTION_API + "/v1/validate", json={"pass_token": token}, headers=DEMO,
                           verify=str(ca), timeout=10).json()
    assert answer["code"] == 0 and answer["data"]["valid"] is True and answer["data"]["action"] == "login"
    again = requests.post(PRODUCTION_API + "/v1/validate", json={"pass_token": token}, headers=DEMO,
                          verify=str(ca), timeout=10).json()
    assert again["data"] == {"valid": False, "error": "token_consumed"}


def test_the_certificate_is_only_trusted_through_the_generated_ca(tls_emulator, resolve_to_emulator, tmp_path):
    """The HTTPS check above is real: without the CA the same request fails verification."""
    other_ca = tmp_path / "other.pem"
    import trustme

    trustme.CA().cert_pem.write_to_path(str(other_ca))
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(PRODUCTION_API + "/_emulator/health", verify=str(other_ca), timeout=10)
    _, ca, _ = tls_emulator
    for host in ("apiv1.captcha.la", "cdn.captcha-cdn.net"):
        assert requests.get(f"https://{host}/_emulator/health", verify=str(ca), timeout=10).json()["status"] == "ok"
