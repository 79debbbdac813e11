"""IPv4 callers on a dual-stack bind (`--host ::`) are IPv4 everywhere (issue 10, item 14): the
journal, the solver IP in the token, strict IP binding and a server token's binding_ip."""

from __future__ import annotations

import pytest
import requests

from tests.support.servers import running_emulator

pytestmark = pytest.mark.integration


def post(url: str, path: str, body: dict, app: str = "strict_ip_app") -> dict:
    headers = {"X-App-Key": app, "X-App-Secret": app.replace("_app", "_secret")}
    return requests.post(url + path, json=body, headers=headers, timeout=10).json()


def solve(url: str, app_key: str, **init) -> str:
    challenge = post(url, "/v1/challenge/init", {"app_key": app_key, **init})["data"]["challenge_id"]
    return post(url, "/v1/challenge/solve", {"challenge_id": challenge})["data"]["pass_token"]


def test_ipv4_callers_on_a_dual_stack_bind_are_recorded_as_ipv4(tmp_path):
    with running_emulator("--host", "::", "--workers", "1", "--threads", "4", "--store",
                          f"sqlite:///{tmp_path / 's.db'}", "--secret", "dual") as server:
        url = server.url.replace("://[::]", "://127.0.0.1")
        assert "127.0.0.1" in url, url
        token = solve(url, "strict_ip_app")
        answer = post(url, "/v1/validate", {"pass_token": token, "client_ip": "127.0.0.1"})
        assert answer["data"]["valid"] is True, answer
        assert answer["data"]["captcha_args"]["user_ip"] == "127.0.0.1"

        sct = post(url, "/v1/server/challenge/issue", {"action": "login", "binding_ip": "127.0.0.1"},
                   app="demo_app")["data"]["server_token"]
        assert solve(url, "demo_app", server_token=sct).startswith("pt_")

        entries = requests.get(url + "/_emulator/requests", timeout=10).json()["requests"]
        assert {e["caller_ip"] for e in entries} == {"127.0.0.1"}
