"""Issue 13 item 12, in real Chromium on a real gunicorn emulator: the dashboard filters the journal
(endpoint, app, outcome, free text), hides control-plane mints, lists the active profile's rules
with how often each fired, and shows a refused reload of the profile file."""

from __future__ import annotations

import os

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.helpers import CREDENTIALS
from tests.support.servers import running_emulator

pytestmark = pytest.mark.browser
PROFILE = """name: chaos
rules:
  - name: broken-validate
    match: {endpoint: validate, app_key: auto_pass_app}
    effect: {status: 503}
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("dash-filters")
    profile = root / "chaos.yaml"
    profile.write_text(PROFILE)
    with running_emulator("--workers", "2", "--threads", "8", "--store", f"sqlite:///{root / 's.db'}",
                          "--profile", str(profile)) as server:
        yield server, profile


@pytest.fixture
def dashboard(chromium, setup):
    context = chromium.new_context(viewport={"width": 1400, "height": 1100}, locale="en-US")
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(setup[0].url + "/_emulator/")
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"uncaught JavaScript errors: {errors}"


def _traffic(url: str) -> None:
    for app_key in ("demo_app", "auto_pass_app"):
        token = requests.post(url + "/_emulator/pass-tokens", json={"app_key": app_key}, timeout=10).json()
        headers = {"X-App-Key": app_key, "X-App-Secret": CREDENTIALS[app_key]}
        requests.post(url + "/v1/validate", json={"pass_token": token["pass_token"]}, headers=headers, timeout=10)
    requests.post(url + "/v1/validate", json={"pass_token": "pt_forged"}, headers={
        "X-App-Key": "demo_app", "X-App-Secret": "demo_secret"}, timeout=10)


def test_the_journal_filters_and_hides_mints(dashboard, setup):
    page, url = dashboard, setup[0].url
    _traffic(url)
    rows = page.get_by_test_id("request-row")
    expect(rows).to_have_count(5)  # 2 mints, 3 validates
    visible = page.locator('[data-testid="request-row"]:visible')
    page.get_by_test_id("filter-hide-mints").check()
    expect(visible).to_have_count(3)
    page.get_by_test_id("filter-app").select_option("auto_pass_app")
    expect(visible).to_have_count(1)
    expect(visible).to_contain_text("fault")
    page.get_by_test_id("filter-app").select_option("")
    page.get_by_test_id("filter-outcome").select_option("rejected")
    expect(visible).to_have_count(1)
    expect(visible).to_contain_text("invalid_token")
    page.get_by_test_id("filter-outcome").select_option("")
    page.get_by_test_id("filter-hide-mints").uncheck()
    page.get_by_test_id("filter-endpoint").select_option("mint")
    expect(visible).to_have_count(2)
    page.get_by_test_id("filter-endpoint").select_option("")
    page.get_by_test_id("filter-text").fill("forged")
    expect(visible).to_have_count(1)
    expect(page.get_by_test_id("filter-count")).to_contain_text("1 of 5")


def test_the_profile_rules_show_firings_and_a_refused_reload(dashboard, setup):
    page, (server, profile) = dashboard, setup
    rule = page.locator('[data-testid="profile-rules-table"] tr[data-rule="broken-validate"]')
    expect(rule).to_be_visible()
    headers = {"X-App-Key": "auto_pass_app", "X-App-Secret": CREDENTIALS["auto_pass_app"]}
    before = requests.get(server.url + "/_emulator/profile", timeout=10).json()["rules"][0]["fired"]
    requests.post(server.url + "/v1/validate", json={"pass_token": "pt_x"}, headers=headers, timeout=10)
    expect(rule.locator("td.fired")).to_have_text(str(before + 1))
    refused = page.get_by_test_id("profile-reload-refused")
    expect(refused).to_be_hidden()
    stat = profile.stat()
    profile.write_text(PROFILE.replace("status: 503", "status: 9999"))
    os.utime(profile, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    expect(refused).to_be_visible(timeout=20_000)  # each worker looks at the file at most once a second
    expect(refused).to_contain_text("status")
    expect(refused).to_contain_text(str(profile))
