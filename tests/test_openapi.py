"""Issue 13 item 15: /_emulator/openapi.json is a valid OpenAPI 3.1 document of every route, and
live answers (successes and the usual failures, on every operation) validate against it."""

from __future__ import annotations

import pytest
import requests
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

from emulator.app import create_app
from emulator.server import ThreadServer
from emulator.settings import Settings

DEMO = {"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"}
NOT_DOCUMENTED = {"/static/<path:filename>", "/_emulator/static/<path:filename>"}  # files, not an API


@pytest.fixture(scope="module")
def server():
    app = create_app(Settings(store="memory://", secret="s", quiet=True))
    running = ThreadServer(app).start()
    yield running, app
    running.stop()


@pytest.fixture(scope="module")
def document(server) -> dict:
    answer = requests.get(server[0].url + "/_emulator/openapi.json", timeout=10)
    assert answer.status_code == 200
    doc = answer.json()
    assert doc["openapi"].startswith("3.1") and doc["servers"] == [{"url": server[0].url}]
    return doc


@pytest.fixture(scope="module")
def spec(document) -> OpenAPI:
    """The document as served (OpenAPI.from_dict checks it against the OpenAPI 3.1 schema)."""
    return OpenAPI.from_dict(document)


def test_every_route_is_documented_and_nothing_else(server, document):
    app = server[1]
    routes = {(_openapi_path(r.rule), m.lower()) for r in app.url_map.iter_rules() if r.rule not in NOT_DOCUMENTED
              for m in r.methods - {"HEAD", "OPTIONS"}}
    paths = document["paths"]
    documented = {(p, m) for p, ops in paths.items() for m in ops if m in ("get", "post", "put", "delete", "patch")}
    assert routes == documented


def _openapi_path(rule: str) -> str:
    for converter in ("<path:", "<"):
        rule = rule.replace(converter, "{")
    return rule.replace(">", "}")


def _calls(url: str) -> list[requests.Response]:
    """One or more live answers for every operation: successes and the usual failures."""
    s = requests.Session()
    out: list[requests.Response] = []

    def call(method: str, path: str, **kw) -> requests.Response:
        answer = s.request(method, url + path, timeout=15, **kw)
        out.append(answer)
        return answer

    token = call("POST", "/_emulator/pass-tokens", json={"app_key": "demo_app", "action": "login"}).json()["pass_token"]
    call("POST", "/_emulator/pass-tokens", json={"app_key": "nope"})
    call("POST", "/_emulator/pass-tokens", data="[", headers={"Content-Type": "application/json"})
    call("GET", "/_emulator/tokens/" + token)
    call("GET", "/_emulator/tokens/garbage")
    call("POST", "/v1/validate", json={"pass_token": token, "keep_token": True}, headers=DEMO)
    call("POST", "/v1/challenge/verify", json={"token": token, "keep_token": True}, headers=DEMO)
    call("POST", "/v1/validate", json={"pass_token": token}, headers=DEMO)
    call("POST", "/v1/validate", json={"pass_token": token}, headers=DEMO)
    call("POST", "/v1/validate", json={"pass_token": token})
    call("POST", "/v1/validate", data="{", headers=DEMO)
    offline = call("POST", "/v1/challenge/offline", json={"app_key": "demo_app", "action": "login"}).json()
    call("POST", "/api/validate", json={"pass_token": offline["data"]["pass_token"]}, headers=DEMO)
    call("POST", "/v1/server/challenge/issue", json={"action": "login"}, headers=DEMO)
    call("POST", "/v1/server-token/issue", data={"action": "login", "ttl": "60"}, headers=DEMO)
    call("POST", "/v1/server/challenge/issue", json={}, headers=DEMO)
    call("POST", "/v1/moderation/check", json={"input": "kill"}, headers=DEMO)
    call("POST", "/v1/moderation/text", json={"text": "hello", "app_key": "demo_app", "app_secret": "demo_secret"})
    call("POST", "/v1/moderation/text", json={"text": ""}, headers=DEMO)
    call("GET", "/demo/issue-captcha-token?action=login&app_key=server_token_app")
    call("POST", "/demo/issue-captcha-token?app_key=demo_app", json={"action": "login"})
    call("GET", "/demo/issue-captcha-token?action=login&app_key=nope")
    for path in ("/captchala-loader.js", "/captchala.js", "/captchala.css", "/_emulator/"):
        call("GET", path)
    init = call("POST", "/v1/challenge/init", json={"app_key": "demo_app", "action": "login"}).json()
    call("POST", "/v1/challenge/solve", json={"challenge_id": init["data"]["challenge_id"]})
    call("POST", "/v1/challenge/solve", json={})
    call("POST", "/v1/challenge/init", json={"app_key": "server_token_app", "action": "login"})
    call("GET", "/_emulator/health")
    call("POST", "/_emulator/reset?app_key=demo_app")
    call("POST", "/_emulator/reset?app_key=nope")
    call("GET", "/_emulator/apps")
    call("POST", "/_emulator/apps", json={"app_key": "shop", "app_secret": "s", "legacy_fields": True})
    call("POST", "/_emulator/apps", json={"app_key": "shop", "app_secret": "s"})
    call("POST", "/_emulator/apps", json={"app_key": "bad", "app_secret": "s", "colour": 1})
    shop = call("POST", "/_emulator/pass-tokens", json={"app_key": "shop"}).json()["pass_token"]
    call("POST", "/v1/validate", json={"pass_token": shop}, headers={"X-App-Key": "shop", "X-App-Secret": "s"})
    call("DELETE", "/_emulator/apps/shop")
    call("DELETE", "/_emulator/apps/shop")
    call("DELETE", "/_emulator/apps/demo_app")
    call("GET", "/_emulator/profiles")
    call("PUT", "/_emulator/profile", json={"name": "slow-validate"})
    call("GET", "/_emulator/profile")
    call("PUT", "/_emulator/profile", data="name: y\nrules: []\n", headers={"Content-Type": "application/yaml"})
    call("PUT", "/_emulator/profile", json={"name": "no-such-profile"})
    call("PUT", "/_emulator/profile", json={"profile": {"name": "x", "rules": [{"name": "r"}]}})
    call("PUT", "/_emulator/profile", json={"other": 1})
    call("DELETE", "/_emulator/profile")
    call("GET", "/_emulator/requests?limit=5")
    call("GET", "/_emulator/requests?endpoint=validate&outcome=rejected")
    call("GET", "/_emulator/requests?limit=zero")
    call("GET", "/_emulator/requests/wait?endpoint=validate&timeout=0")
    call("GET", "/_emulator/requests/wait?endpoint=nothing&timeout=0")
    call("GET", "/_emulator/clock")
    call("PUT", "/_emulator/clock", json={"offset": 60})
    call("PUT", "/_emulator/clock", json={"offset": "soon"})
    call("POST", "/_emulator/clock/advance", json={"seconds": 5})
    call("POST", "/_emulator/clock/advance?seconds=5")
    call("GET", "/_emulator/openapi.json")
    call("GET", "/_emulator/diagnosis")
    call("GET", "/_emulator/diagnosis?app_key=demo_app&since=2026-01-01T00:00:00Z")
    call("GET", "/_emulator/diagnosis?since=yesterday")
    return out


def test_live_answers_match_the_document(server, spec):
    answers = _calls(server[0].url)
    problems = []
    for answer in answers:
        try:
            spec.validate_response(RequestsOpenAPIRequest(answer.request), RequestsOpenAPIResponse(answer))
        except Exception as exc:  # noqa: BLE001 - collect every mismatch, then report them together
            detail = getattr(exc, "__cause__", None) or exc
            problems.append(f"{answer.request.method} {answer.request.path_url} -> {answer.status_code}: "
                            f"{type(exc).__name__}: {detail}"[:600])
    assert not problems, "\n".join(problems)
    assert len({(a.request.method, a.request.path_url.split("?")[0]) for a in answers}) >= 30
