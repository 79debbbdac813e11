"""The README's audit example runs as written (pytester), against a small login app that validates
through the plugin's emulator and redirects on success, like most login forms."""

from __future__ import annotations

from pathlib import Path

pytest_plugins = ["pytester"]

LOGIN_APP_CONFTEST = '''
import pytest
import requests
from flask import Flask, redirect, request


@pytest.fixture
def client(captchala_emulator):
    emu = captchala_emulator
    app = Flask("shop")

    @app.post("/login")
    def login():
        user_ip = request.headers.get("X-Forwarded-For", request.remote_addr)
        try:
            answer = requests.post(emu.validate_url, headers=emu.headers, timeout=3,
                                   json={"pass_token": request.form.get("captcha_token", ""), "client_ip": user_ip})
            data = answer.json()["data"]
        except (requests.RequestException, ValueError, KeyError):
            return "try again later", 503
        if data.get("valid") is True and data.get("action") == "login":
            return redirect("/account")
        return "captcha incomplete or invalid", 403

    return app.test_client()
'''


def readme_audit_example() -> str:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    after = readme.split("the user got in, and both return the report:", 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_audit_example_runs_as_written(pytester):
    pytester.makeconftest(LOGIN_APP_CONFTEST)
    pytester.makepyfile(test_readme_audit=readme_audit_example())
    pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=1)
