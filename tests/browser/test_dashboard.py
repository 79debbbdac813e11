"""The dashboard GET /_emulator/ in real Chromium, on a real gunicorn emulator with --admin-token:
it lists the apps, shows a validation that just happened with its reason, switches the fault
profile (and the API reflects it), and explains a pasted token. Saves its screenshot where
helpers.screenshot_path says."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.helpers import CREDENTIALS, screenshot_path
from tests.support.servers import running_emulator

pytestmark = pytest.mark.browser
ADMIN = "dash-admin"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
SCREENSHOT = screenshot_path("dashboard.png")  # docs/images/ only through scripts/readme-screenshots
PROFILE = "validate-503"  # a built-in profile whose rule answers /v1/validate with a 503 page


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    db = tmp_path_factory.mktemp("dashboard") / "state.db"
    with running_emulator("--workers", "2", "--threads", "8", "--store", f"sqlite:///{db}",
                          "--admin-token", ADMIN) as server:
        yield server


@pytest.fixture
def dashboard(chromium, emulator):
    context = chromium.new_context(viewport={"width": 1400, "height": 1100}, locale="en-US")
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{emulator.url}/_emulator/?admin_token={ADMIN}")
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"uncaught JavaScript errors: {errors}"


def validate(url: str, token: str, app_key: str = "demo_app", secret: str | None = None) -> requests.Response:
    headers = {"X-App-Key": app_key, "X-App-Secret": secret or CREDENTIALS[app_key]}
    return requests.post(url + "/v1/validate", json={"pass_token": token}, headers=headers, timeout=10)


def journal(url: str, **filters) -> list[dict]:
    return requests.get(url + "/_emulator/requests", params=filters, headers=AUTH, timeout=10).json()["requests"]


def test_the_dashboard_lists_apps_logs_switches_profiles_and_explains(dashboard, emulator):
    page, url = dashboard, emulator.url
    requests.post(url + "/_emulator/reset", headers=AUTH, timeout=10).raise_for_status()
    requests.delete(url + "/_emulator/profile", headers=AUTH, timeout=10).raise_for_status()

    # 1. the apps, with their secrets
    for app_key, secret in CREDENTIALS.items():
        row = page.locator(f'[data-testid="apps-table"] tr[data-app-key="{app_key}"]')
        expect(row).to_contain_text(secret)
    strict_row = page.locator('[data-testid="apps-table"] tr[data-app-key="strict_ip_app"]')
    expect(strict_row).to_contain_text("strict IP binding")

    # 2. a validation that just happened shows up with its reason
    token = emulator.mint(action="login")
    assert validate(url, token).json()["data"]["valid"] is True
    replay = validate(url, token)
    assert replay.json()["data"]["error"] == "token_consumed"
    wrong_secret = validate(url, emulator.mint(), secret="auto_pass_secret")
    requests_table = page.get_by_test_id("requests-table")
    consumed_entry = journal(url, code="token_consumed")[-1]
    assert consumed_entry["reason"] == replay.headers["X-Captchala-Emulator-Reason"]
    consumed_row = requests_table.locator(f'tr[data-id="{consumed_entry["id"]}"]')
    expect(consumed_row).to_contain_text("rejected token_consumed")
    expect(consumed_row).to_contain_text(consumed_entry["reason"])
    expect(requests_table).to_contain_text(wrong_secret.headers["X-Captchala-Emulator-Reason"])
    expect(page.get_by_test_id("log-status")).to_have_text("live")

    # 3. switching the profile from the page changes what the API does
    expect(page.get_by_test_id("active-profile")).to_have_text("none")
    page.get_by_test_id("profile-select").select_option(PROFILE)
    page.get_by_test_id("profile-apply").click()
    expect(page.get_by_test_id("active-profile")).to_have_text(PROFILE)
    active = requests.get(url + "/_emulator/profile", headers=AUTH, timeout=10).json()
    assert (active["name"], active["active"]) == (PROFILE, True)
    faulted = validate(url, emulator.mint())
    assert faulted.status_code == 503
    assert faulted.headers["X-Captchala-Emulator-Fault"] == f"{PROFILE}/gateway-503"
    fault_entry = journal(url, endpoint="validate")[-1]
    expect(requests_table.locator(f'tr[data-id="{fault_entry["id"]}"]')).to_contain_text(fault_entry["fault"])

    # 4. a pasted token is explained: state, reason and history
    page.get_by_test_id("token-input").fill(token)
    page.get_by_test_id("explain-button").click()
    state = page.get_by_test_id("explanation-state")
    expect(state).to_contain_text("consumed")
    expect(state).to_contain_text(consumed_entry["reason"].split(" by ")[0])
    history = page.get_by_test_id("explanation-history")
    expect(history.locator("li")).to_have_count(3)  # minted, valid, rejected
    expect(history).to_contain_text("rejected token_consumed")
    expect(page.get_by_test_id("explanation")).to_contain_text("Claims")

    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # and back to no faults, through the page
    page.get_by_test_id("profile-select").select_option("")
    page.get_by_test_id("profile-apply").click()
    expect(page.get_by_test_id("active-profile")).to_have_text("none")
    assert requests.get(url + "/_emulator/profile", headers=AUTH, timeout=10).json()["active"] is False
    assert "X-Captchala-Emulator-Fault" not in validate(url, emulator.mint()).headers


def test_the_dashboard_notices_a_reset_and_the_virtual_clock(dashboard, emulator):
    page, url = dashboard, emulator.url
    token = emulator.mint()
    validate(url, token)
    expect(page.get_by_test_id("requests-table").locator("tbody tr")).not_to_have_count(0)
    page.get_by_test_id("reset").click()
    expect(page.get_by_test_id("requests-table").locator("tbody tr")).to_have_count(0)
    page.get_by_role("button", name="+1 h").click()
    expect(page.get_by_test_id("clock-offset")).to_have_text("3600")
    assert requests.get(url + "/_emulator/clock", headers=AUTH, timeout=10).json()["offset"] == 3600
    assert validate(url, token).json()["data"]["error"] == "token_expired"
    requests.post(url + "/_emulator/reset", headers=AUTH, timeout=10).raise_for_status()


def test_without_the_admin_token_the_page_is_refused(emulator):
    assert requests.get(emulator.url + "/_emulator/", timeout=10).status_code == 401
    assert requests.get(emulator.url + "/_emulator/?admin_token=nope", timeout=10).status_code == 401
