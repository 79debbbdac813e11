"""The real endpoints through the Flask test client: answers, every error code, issue options."""

from __future__ import annotations

import pytest

from emulator.domain.tokens import Kind, TokenSigner
from tests.support.apps import DEMO

STRICT = {"X-App-Key": "strict_ip_app", "X-App-Secret": "strict_ip_secret"}


def creds(app_key: str) -> dict:
    return {"X-App-Key": app_key, "X-App-Secret": app_key.replace("_app", "_secret")}


# --- acceptance 2: a minted token validates once ----------------------------------------------

def test_minted_token_validates_once_with_full_data(mint, validate, fake_time):
    token = mint(action="checkout", client_ip="203.0.113.9", referer="https://shop.example/pay",
                 platform="web", uid="user-42")
    body = validate(token)
    assert body["code"] == 0
    data = body["data"]
    assert data["valid"] is True
    assert data["challenge_id"].startswith("ch_")
    assert data["action"] == "checkout"
    assert data["uid"] == "user-42"
    assert data["captcha_args"] == {"platform": "web", "user_ip": "203.0.113.9", "referer": "https://shop.example/pay",
                                    "pkg": None, "solved_at": int(fake_time.now), "risk_score": 10}
    again = validate(token)
    assert again["code"] == 0 and again["data"] == {"valid": False, "error": "token_consumed"}


def test_keep_token_does_not_consume(mint, validate):
    token = mint()
    assert validate(token, keep_token=True)["data"]["valid"] is True
    assert validate(token, keep_token=True)["data"]["valid"] is True
    assert validate(token)["data"]["valid"] is True
    assert validate(token)["data"]["error"] == "token_consumed"
    assert validate(token, keep_token=True)["data"]["error"] == "token_consumed"


# --- acceptance 3: every error code -----------------------------------------------------------

def token_error(body) -> str:
    assert body["code"] == 0 and body["data"]["valid"] is False
    return body["data"]["error"]


@pytest.mark.parametrize("fields", [{}, {"pass_token": ""}, {"pass_token": None}, {"pass_token": "   "}])
def test_empty_token(client, fields):
    body = client.post("/v1/validate", json=fields, headers=DEMO).json
    assert token_error(body) == "empty_token"


def test_invalid_token_forged(validate):
    forged = TokenSigner("not-the-emulator-secret").mint_pass(app_key="demo_app", action="login", now=1.8e9, ttl=300)
    assert token_error(validate(TokenSigner("not-the-emulator-secret").encode(forged))) == "invalid_token"


@pytest.mark.parametrize("garbage", ["pt_abc", "hello", "pt_" + "A" * 100, "client_123", "co_123"])
def test_invalid_token_garbage(validate, garbage):
    assert token_error(validate(garbage)) == "invalid_token"


def test_invalid_token_tampered(mint, validate):
    token = mint()
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert token_error(validate(tampered)) == "invalid_token"
    assert validate(token)["data"]["valid"] is True  # the real one was not touched


def test_invalid_token_wrong_kind(client, validate):
    sct = client.post("/v1/server/challenge/issue", json={"action": "login"}, headers=DEMO).json["data"]["server_token"]
    assert token_error(validate(sct)) == "invalid_token"
    assert token_error(validate("pt_" + sct[4:])) == "invalid_token"


def test_invalid_token_other_apps_token(mint, validate):
    token = mint(app_key="auto_pass_app")
    response = validate(token)
    assert token_error(response) == "invalid_token"
    assert validate(token, headers=creds("auto_pass_app"))["data"]["valid"] is True


def test_offline_token_only_at_backup(mint, validate):
    token = mint(kind="offline")
    assert token.startswith("offline_")
    assert token_error(validate(token)) == "invalid_token"
    data = validate(token, path="/api/validate")["data"]
    assert data["valid"] is True and data["offline"] is True
    assert token_error(validate(token, path="/api/validate")) == "token_consumed"


def test_backup_also_validates_pass_tokens_sharing_consumption(mint, validate):
    token = mint()
    assert validate(token, path="/api/validate")["data"]["valid"] is True
    assert token_error(validate(token)) == "token_consumed"


def test_token_expired_by_the_clock(mint, validate, runtime):
    token = mint(ttl=60)
    runtime.clock.advance(59)
    assert validate(token, keep_token=True)["data"]["valid"] is True
    runtime.clock.advance(1)
    assert token_error(validate(token)) == "token_expired"


def test_pass_token_ttl_comes_from_the_app(tmp_path, settings, fake_time):
    from emulator.app import create_app
    from emulator.runtime import build_runtime

    apps = tmp_path / "apps.yaml"
    apps.write_text("- {app_key: short_app, app_secret: short_secret, pass_token_ttl: 5}\n")
    rt = build_runtime(settings.replace(apps=str(apps)), real_time=fake_time)
    client = create_app(runtime=rt).test_client()
    token = client.post("/_emulator/pass-tokens", json={"app_key": "short_app"}).json["pass_token"]
    fake_time.advance(5)
    body = client.post("/v1/validate", json={"pass_token": token}, headers=creds("short_app")).json
    assert token_error(body) == "token_expired"


def test_token_expired_checked_before_consumed(mint, validate, runtime):
    token = mint(ttl=10)
    assert validate(token)["data"]["valid"] is True
    runtime.clock.advance(11)
    assert token_error(validate(token)) == "token_expired"


def test_binding_mismatch_only_on_strict_app(mint, validate):
    strict = mint(app_key="strict_ip_app", client_ip="198.51.100.7")
    assert token_error(validate(strict, headers=STRICT, client_ip="198.51.100.8")) == "binding_mismatch"
    assert validate(strict, headers=STRICT, client_ip="::ffff:198.51.100.7")["data"]["valid"] is True

    lenient = mint(client_ip="198.51.100.7")
    assert validate(lenient, client_ip="198.51.100.8")["data"]["valid"] is True


def test_strict_app_without_client_ip_or_solver_ip_does_not_gate(mint, validate):
    assert validate(mint(app_key="strict_ip_app", client_ip="198.51.100.7"), headers=STRICT)["data"]["valid"] is True
    assert validate(mint(app_key="strict_ip_app"), headers=STRICT, client_ip="1.1.1.1")["data"]["valid"] is True


def test_binding_mismatch_does_not_consume(mint, validate):
    token = mint(app_key="strict_ip_app", client_ip="198.51.100.7")
    validate(token, headers=STRICT, client_ip="10.0.0.1")
    assert validate(token, headers=STRICT, client_ip="198.51.100.7")["data"]["valid"] is True


def request_error(response, code: str, status: int) -> None:
    assert response.status_code == 200, "request-level errors are HTTP 200 unless --http-status-errors"
    body = response.json
    assert body["code"] == status and isinstance(body["code"], int)
    assert body["error"] == code and body["data"]["error"] == code
    assert isinstance(body["msg"], str) and body["msg"]


@pytest.mark.parametrize("path", ["/v1/validate", "/api/validate", "/v1/server/challenge/issue",
                                  "/v1/moderation/text", "/v1/moderation/check"])
@pytest.mark.parametrize("headers,code,status", [
    ({}, "invalid_app_key", 401),
    ({"X-App-Key": "nope", "X-App-Secret": "demo_secret"}, "invalid_app_key", 401),
    ({"X-App-Key": "demo_app"}, "invalid_app_secret", 401),
    ({"X-App-Key": "demo_app", "X-App-Secret": "wrong"}, "invalid_app_secret", 401),
    ({"X-App-Key": "demo_app", "X-App-Secret": "auto_pass_secret"}, "invalid_app_secret", 401),
    ({"X-App-Key": "disabled_app", "X-App-Secret": "disabled_secret"}, "app_disabled", 403),
])
def test_auth_errors_on_every_endpoint(client, path, headers, code, status):
    request_error(client.post(path, json={"pass_token": "x", "action": "login", "text": "hi"}, headers=headers),
                  code, status)


def test_other_apps_secret_is_named_in_the_reason(client):
    response = client.post("/v1/validate", json={},
                           headers={"X-App-Key": "demo_app", "X-App-Secret": "auto_pass_secret"})
    assert response.headers["X-Captchala-Emulator-Reason"] == "secret belongs to app auto_pass_app, not demo_app"


def test_auth_is_checked_before_the_body(client):
    response = client.post("/v1/validate", data=b"{not json", headers={"X-App-Key": "nope"})
    request_error(response, "invalid_app_key", 401)


def test_http_status_errors_flag(tmp_path, fake_time):
    from emulator.app import create_app
    from emulator.runtime import build_runtime
    from emulator.settings import Settings

    rt = build_runtime(Settings(store="memory://", secret="s", http_status_errors=True), real_time=fake_time)
    response = create_app(runtime=rt).test_client().post("/v1/validate", json={}, headers={"X-App-Key": "nope"})
    assert response.status_code == 401 and response.json["code"] == 401


def test_always_fail_app_rejects_every_token(mint, validate):
    headers = creds("always_fail_app")
    assert token_error(validate(mint(app_key="always_fail_app"), headers=headers)) == "invalid_token"


def test_degraded_token_answers_degraded_until_it_expires(mint, validate, runtime):
    token = mint(kind="degraded", action="signup")
    assert token.startswith("dg_")
    for _ in range(2):  # not consumed: the integrator decides
        body = validate(token)
        assert body["code"] == 0
        assert body["data"] == {"valid": False, "degraded": True, "reason": "quota_exhausted", "action": "signup"}
    runtime.clock.advance(300)
    assert token_error(validate(token)) == "token_expired"


# --- issue (acceptance 4) ---------------------------------------------------------------------

def issue(client, *, form=None, json=None, headers=DEMO):
    if form is not None:
        return client.post("/v1/server/challenge/issue", data=form, headers=headers)
    return client.post("/v1/server/challenge/issue", json=json, headers=headers)


def sct_claims(runtime, token: str) -> dict:
    return runtime.signer.load(token, (Kind.SERVER,)).claims


@pytest.mark.parametrize("style", ["json", "form"])
def test_issue_json_and_form(client, runtime, fake_time, style):
    fields = {"action": "login", "ttl": 120, "max_uses": 3}
    form = {k: str(v) for k, v in fields.items()}
    response = issue(client, json=fields) if style == "json" else issue(client, form=form)
    body = response.json
    assert body["code"] == 0
    data = body["data"]
    assert data["server_token"].startswith("sct_")
    assert data["expires_in"] == 120 and data["issued_at"] == int(fake_time.now)
    claims = sct_claims(runtime, data["server_token"])
    assert claims["act"] == "login" and claims["max"] == 3


@pytest.mark.parametrize("field", ["binding_ip", "bind_ip"])
@pytest.mark.parametrize("style", ["json", "form"])
def test_issue_both_ip_field_names(client, runtime, field, style):
    fields = {"action": "login", field: "192.0.2.10"}
    response = issue(client, json=fields) if style == "json" else issue(client, form=fields)
    assert sct_claims(runtime, response.json["data"]["server_token"])["bip"] == "192.0.2.10"


def test_issue_defaults_and_clamp(client, runtime):
    data = issue(client, json={"action": "login"}).json["data"]
    assert data["expires_in"] == 300
    assert sct_claims(runtime, data["server_token"])["max"] == 1
    assert issue(client, json={"action": "login", "ttl": 10**6}).json["data"]["expires_in"] == 3600


@pytest.mark.parametrize("fields,code", [
    ({}, "invalid_action"), ({"action": ""}, "invalid_action"), ({"action": "   "}, "invalid_action"),
    ({"action": "a" * 65}, "invalid_action"), ({"action": 7}, "invalid_action"),
    ({"action": "login", "binding_ip": "not-an-ip"}, "invalid_request"),
    ({"action": "login", "bind_ip": "300.1.1.1"}, "invalid_request"),
    ({"action": "login", "ttl": 0}, "invalid_request"), ({"action": "login", "ttl": "soon"}, "invalid_request"),
    ({"action": "login", "max_uses": 0}, "invalid_request"), ({"action": "login", "max_uses": 101}, "invalid_request"),
    ({"action": "login", "max_uses": True}, "invalid_request"),
    ({"action": "login", "bind_uid": "u" * 129}, "invalid_request"),
    ({"action": "login", "bind_uid": 5}, "invalid_request"),
])
def test_issue_refuses_bad_fields(client, fields, code):
    request_error(issue(client, json=fields), code, 400)


def test_issue_aliases(client):
    body = client.post("/v1/server-token/issue", json={"action": "login"}, headers=DEMO).json
    assert body["code"] == 0 and body["data"]["server_token"].startswith("sct_")


def test_verify_alias_uses_token_field(client, mint):
    token = mint()
    body = client.post("/v1/challenge/verify", json={"token": token}, headers=DEMO).json
    assert body["data"]["valid"] is True


def test_bind_uid_comes_back_as_uid(runtime, validate):
    """The browser path (init/solve) copies the sct_'s bind_uid into the pass token; here the domain directly."""
    from emulator.domain.server_tokens import IssueRequest, issue_server_token

    app = runtime.apps.get("demo_app")
    sct, _, _ = issue_server_token(IssueRequest("login", bind_uid="user-7"), app, signer=runtime.signer,
                                   now=runtime.clock.now(), max_ttl=3600)
    token = runtime.signer.mint_pass(app_key="demo_app", action="login", now=runtime.clock.now(), ttl=300,
                                     uid=sct.claims["uid"])
    assert validate(runtime.signer.encode(token))["data"]["uid"] == "user-7"


# --- acceptance 5: bad input never yields a 5xx or a non-JSON body ----------------------------

@pytest.mark.parametrize("body,content_type", [
    (b"not json at all", "application/json"),
    (b"[1, 2, 3]", "application/json"),
    (b'"a string"', "application/json"),
    (b"null", "application/json"),
    (b"\xff\xfe\xfa", "application/json"),
    (b'{"pass_token": 12}', "application/json"),
    (b'{"pass_token": ["a"]}', "application/json"),
    (b'{"pass_token": "x", "keep_token": "yes"}', "application/json"),
    (b'{"pass_token": "x", "client_ip": 5}', "application/json"),
    (b'{"pass_token": "x", "client_ip": "nope"}', "application/json"),
    (b"pass_token=abc", "application/x-www-form-urlencoded"),
    (b"{" * 10000, "application/json"),
    (b'{"pass_token": ' + b"1" * 5000 + b"}", "application/json"),  # an integer past Python's digit limit
])
def test_bad_bodies_get_a_clear_envelope(client, body, content_type):
    response = client.post("/v1/validate", data=body, headers={**DEMO, "Content-Type": content_type})
    assert response.status_code == 200 and response.is_json
    payload = response.json
    assert payload["code"] == 400 and payload["error"] == "invalid_request"
    assert response.headers["X-Captchala-Emulator-Reason"]


@pytest.mark.parametrize("path", ["/v1/validate", "/v1/server/challenge/issue", "/v1/moderation/text"])
def test_body_over_64_kib_is_refused(client, path):
    big = b'{"pass_token": "' + b"a" * (65 * 1024) + b'"}'
    response = client.post(path, data=big, headers={**DEMO, "Content-Type": "application/json"})
    assert response.is_json and response.json["error"] == "invalid_request"
    assert "64 KiB" in response.headers["X-Captchala-Emulator-Reason"]


def test_huge_body_beyond_the_server_limit_is_still_json(client):
    response = client.post("/v1/validate", data=b"a" * (512 * 1024),
                           headers={**DEMO, "Content-Type": "application/json"})
    assert response.status_code in (200, 413) and response.is_json and response.json["code"] != 0


def test_unknown_fields_are_ignored(mint, validate):
    assert validate(mint(), extra_field={"x": 1}, another=[1])["data"]["valid"] is True


def test_unknown_path_and_method_are_json(client):
    assert client.get("/v1/nope").json["error"] == "not_found"
    assert client.get("/v1/validate").json["error"] == "method_not_allowed"
    assert client.put("/v1/server/challenge/issue").json["error"] == "method_not_allowed"


def test_form_issue_with_invalid_utf8(client):
    response = client.post("/v1/server/challenge/issue", data=b"action=%ff%fe", headers={
        **DEMO, "Content-Type": "application/x-www-form-urlencoded"})
    assert response.is_json and response.json["code"] in (0, 400)


# --- moderation -------------------------------------------------------------------------------

def test_moderation_text_flags_configured_words(client):
    clean = client.post("/v1/moderation/text", json={"text": "hello there"}, headers=DEMO).json
    assert clean["code"] == 0 and clean["data"]["flagged"] is False and clean["data"]["content_type"] == "text"
    bad = client.post("/v1/moderation/text", json={"text": "I will KILL it"}, headers=DEMO).json["data"]
    assert bad["flagged"] is True and bad["categories"]["violence"] is True and bad["categories"]["hate"] is False


def test_moderation_credentials_in_body_like_the_sdks(client):
    body = {"app_key": "demo_app", "app_secret": "demo_secret", "text": "fine"}
    assert client.post("/v1/moderation/text", json=body).json["code"] == 0


def test_moderation_check_content_types(client):
    def check(parts):
        return client.post("/v1/moderation/check", json={"input": parts}, headers=DEMO).json

    text = {"type": "text", "text": "nice"}
    image = {"type": "image_url", "image_url": {"url": "https://img.example/nsfw.png"}}
    assert check([text])["data"]["content_type"] == "text"
    img = check([image])["data"]
    assert img["content_type"] == "image" and img["categories"]["sexual"] is True
    assert check([text, image])["data"]["content_type"] == "mixed"
    request_error(client.post("/v1/moderation/check", json={"input": []}, headers=DEMO), "empty_input", 400)
    request_error(client.post("/v1/moderation/text", json={"text": ""}, headers=DEMO), "empty_text", 400)
    request_error(client.post("/v1/moderation/check", json={"input": [{"type": "audio"}]}, headers=DEMO),
                  "invalid_request", 400)


def test_moderation_words_are_per_app(tmp_path, settings, fake_time):
    from emulator.app import create_app
    from emulator.runtime import build_runtime

    apps = tmp_path / "apps.yaml"
    apps.write_text("- app_key: mod_app\n  app_secret: mod_secret\n  moderation: {spam: [casino]}\n")
    client = create_app(runtime=build_runtime(settings.replace(apps=str(apps)), real_time=fake_time)).test_client()
    data = client.post("/v1/moderation/text", json={"text": "best casino"}, headers=creds("mod_app")).json["data"]
    assert data == {"flagged": True, "categories": {"spam": True}, "content_type": "text"}


# --- control plane basics --------------------------------------------------------------------

def test_mint_refuses_bad_input(client):
    assert client.post("/_emulator/pass-tokens", json={"app_key": "nope"}).status_code == 404
    assert client.post("/_emulator/pass-tokens", json={"kind": "server"}).status_code == 400
    assert client.post("/_emulator/pass-tokens", json={"ttl": -1}).status_code == 400
    assert client.post("/_emulator/pass-tokens", json={"bogus": 1}).status_code == 400
    assert client.post("/_emulator/pass-tokens", data=b"[").status_code == 400


def test_reset_forgets_consumed_tokens_scoped(client, mint, validate):
    a, b = mint(), mint(app_key="auto_pass_app")
    validate(a)
    validate(b, headers=creds("auto_pass_app"))
    assert client.post("/_emulator/reset?app_key=demo_app").json == {"reset": True, "app_key": "demo_app"}
    assert validate(a)["data"]["valid"] is True
    assert token_error(validate(b, headers=creds("auto_pass_app"))) == "token_consumed"
    assert client.post("/_emulator/reset?app_key=nope").status_code == 404


def test_health(client):
    body = client.get("/_emulator/health").json
    assert body["status"] == "ok" and body["store"].startswith("sqlite:///") and body["version"]


@pytest.mark.parametrize("method, path, status, code, reason", [
    ("get", "/v1/validate", 405, "method_not_allowed", "/v1/validate answers POST only, not GET"),
    ("put", "/api/validate", 405, "method_not_allowed", "/api/validate answers POST only, not PUT"),
    ("post", "/v1/valdiate", 404, "not_found", "no API endpoint at /v1/valdiate"),
])
def test_an_api_request_no_endpoint_answers_is_journaled_as_unmatched(client, method, path, status, code, reason):
    """A backend calling the wrong path or method shows up in the journal (and says why), instead of
    looking like a backend that never called at all."""
    answer = getattr(client, method)(path, json={"pass_token": "pt_x"}, headers=DEMO)
    assert answer.status_code == status and answer.json["error"] == code
    assert answer.headers["X-Captchala-Emulator-Reason"] == reason
    if status == 405:
        assert answer.headers["Allow"] == "OPTIONS, POST"
    entry = client.get("/_emulator/requests?endpoint=unmatched").json["requests"][-1]
    assert (entry["method"], entry["path"], entry["status"], entry["code"], entry["outcome"], entry["reason"]) == (
        method.upper(), path, status, code, "error", reason)


def test_a_404_outside_the_api_paths_is_not_journaled(client):
    assert client.get("/favicon.ico").status_code == 404
    assert client.get("/_emulator/requests?endpoint=unmatched").json["requests"] == []
