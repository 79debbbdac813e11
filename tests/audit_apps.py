"""Three small login apps for the audit tests, each a Flask app calling the emulator's validate:

- `correct`: validates every token, forwards the user's IP, checks the action, fails closed;
- `fail_open`: the same, but lets the user in when validate errors, times out or answers garbage;
- `skip_validation`: lets a token in without validating when it "looks valid" (a pt_ prefix)."""

from __future__ import annotations

import requests
from flask import Flask, request

DEMO = {"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"}
KINDS = ("correct", "fail_open", "skip_validation")
VALIDATE_TIMEOUT_S = 3.0  # generous: a busy CI machine must not turn a slow answer into a "down" one


def make_app(emulator_url: str, kind: str, action: str = "login") -> Flask:
    if kind not in KINDS:
        raise ValueError(kind)
    app = Flask(f"audit-{kind}")

    @app.post("/login")
    def login():
        token = request.form.get("captcha_token", "")
        if kind == "skip_validation" and token.startswith("pt_") and len(token) > 40:
            return "welcome (token looked fine)", 200
        user_ip = request.headers.get("X-Forwarded-For", request.remote_addr or "").split(",")[0].strip()
        try:
            answer = requests.post(emulator_url + "/v1/validate", json={"pass_token": token, "client_ip": user_ip},
                                   headers=DEMO, timeout=VALIDATE_TIMEOUT_S)
            data = answer.json()["data"] if answer.status_code < 500 else None
        except (requests.RequestException, ValueError, KeyError, TypeError):
            data = None
        if data is None:
            return ("welcome (captcha down, let in)", 200) if kind == "fail_open" else ("try again later", 503)
        if data.get("valid") is True and data.get("action") == action:
            return "welcome", 200
        return "captcha incomplete or invalid", 403

    return app
