"""The dashboard's diagnosis panel, charts and token timeline in real headless Chromium, on the
session's real gunicorn emulator (2 workers): findings produced through the real endpoints show
up by id, the journal charts draw, and an explained token shows its stages with the late, failing
validate marked. Screenshots go to $CAPTCHALA_SCREENSHOT_DIR (scripts/readme-screenshots sets it
to docs/images) or else to a temporary directory, never into the tracked tree."""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.helpers import screenshot_path

pytestmark = pytest.mark.browser
USER = {"X-Forwarded-For": "203.0.113.7"}


def solve(url: str, app_key: str = "demo_app") -> str:
    init = requests.post(url + "/v1/challenge/init", json={"app_key": app_key, "action": "login",
                                                           "referer": "https://shop.example/checkout"}, timeout=10)
    challenge = init.json()["data"]["challenge_id"]
    solved = requests.post(url + "/v1/challenge/solve", json={"challenge_id": challenge}, timeout=10)
    return solved.json()["data"]["pass_token"]


def test_diagnosis_panel_charts_and_timeline(page, emulator):
    url = emulator.url
    twice = solve(url)
    assert emulator.validate(twice)["data"]["valid"] is True
    assert emulator.validate(twice)["data"]["error"] == "token_consumed"  # a double submit
    assert emulator.validate("")["data"]["error"] == "empty_token"
    late = solve(url)
    requests.put(url + "/_emulator/clock", json={"offset": 400}, timeout=10).raise_for_status()
    assert emulator.validate(late)["data"]["error"] == "token_expired"

    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(url + "/_emulator/")
    findings = page.get_by_test_id("diagnosis-list")
    for finding_id in ("duplicate_submit", "submitted_before_token", "token_expired_before_validation"):
        expect(findings.locator(f'[data-finding-id="{finding_id}"]')).to_be_visible()
    expect(findings.locator('[data-finding-id="duplicate_submit"] summary')).to_contain_text("×1")
    expect(page.get_by_test_id("diagnosis-status")).to_have_text("live")

    expect(page.locator('[data-testid="outcomes-chart"] rect.bar.bad').first).to_be_visible()
    expect(page.locator('[data-testid="outcomes-chart"] rect.bar.ok').first).to_be_visible()
    expect(page.locator('[data-testid="latency-chart"] [data-endpoint="validate"]')).to_contain_text("p99")

    page.get_by_test_id("token-input").fill(late)
    page.get_by_test_id("explain-button").click()
    stages = page.get_by_test_id("timeline-stage")
    expect(stages).to_have_count(3)
    expect(stages.nth(0)).to_have_attribute("data-stage", "challenge_init")
    last = stages.nth(2)
    expect(last).to_have_class("stage failing slow")
    expect(last).to_contain_text(re.compile(r"\+40\d(\.\d+)? s \(slow\)"))  # 400 s of virtual time, plus real
    expect(last).to_contain_text("rejected token_expired")
    expect(stages.nth(1)).to_have_class("stage")
    opened = findings.locator('[data-finding-id="token_expired_before_validation"]')
    opened.locator("summary").click()
    refreshes = int(findings.get_attribute("data-refreshes"))
    expect(findings).to_have_attribute("data-refreshes", str(refreshes + 1))  # the panel polled again...
    expect(opened).to_have_attribute("open", "")  # ...and what the reader opened is still open
    expect(opened).to_contain_text("refresh the challenge before submit")
    page.screenshot(path=str(screenshot_path("diagnosis.png")), full_page=True)
    requests.put(url + "/_emulator/clock", json={"offset": 0}, timeout=10).raise_for_status()


def test_a_quiet_emulator_says_so(page, emulator):
    page.goto(emulator.url + "/_emulator/")
    expect(page.get_by_test_id("diagnosis-list")).to_contain_text("No findings")
    expect(page.get_by_test_id("outcomes-chart")).to_contain_text("no requests yet")
