"""The official SDKs' parsing rules (docs/compatibility.md §3), encoded in Python, applied to every endpoint.

`go_*` mirror captchala-go's decoding (Go types: int code, map data, string/number fields);
`php_*` mirror captchala-php's (strict `=== 0`, `??` fallbacks). If an answer would make either
SDK misread it (or crash, as Go's nil result does on a non-object `data`), these tests fail."""

from __future__ import annotations

import json

import pytest

from tests.support.apps import DEMO


class SDKDecodeError(Exception):
    pass


def go_decode(raw: bytes) -> dict:
    """encoding/json into struct{Code int; Msg string; Data map[string]interface{}}."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise SDKDecodeError(f"go: not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise SDKDecodeError("go: body is not an object")
    if not isinstance(body.get("code"), int) or isinstance(body.get("code"), bool):
        raise SDKDecodeError("go: code is not a JSON integer")
    if "msg" in body and not isinstance(body["msg"], str):
        raise SDKDecodeError("go: msg is not a string")
    if "data" in body and body["data"] is not None and not isinstance(body["data"], dict):
        raise SDKDecodeError("go: data is not an object")
    return body


def go_validate(raw: bytes) -> dict:
    body = go_decode(raw)
    data = body.get("data") or {}
    ok = body["code"] == 0 and (data.get("valid") is True or (data.get("valid") is None and data.get("ok") is True))
    result = {"valid": ok, "degraded": data.get("degraded") is True}
    if ok:
        for key in ("challenge_id", "action"):
            if not isinstance(data.get(key), str):
                raise SDKDecodeError(f"go: {key} is not a string")
        result["uid"] = data["uid"] if isinstance(data.get("uid"), str) else ""
        args = data.get("captcha_args")
        if not isinstance(args, dict):
            raise SDKDecodeError("go: captcha_args is not an object")
        for key in ("platform", "user_ip", "referer", "pkg"):
            if args.get(key) is not None and not isinstance(args[key], str):
                raise SDKDecodeError(f"go: captcha_args.{key} is not a string")
        for key in ("solved_at", "risk_score"):
            if not isinstance(args.get(key), (int, float)) or isinstance(args.get(key), bool):
                raise SDKDecodeError(f"go: captcha_args.{key} is not a number")
    if result["degraded"]:
        result["reason"] = data.get("reason") if isinstance(data.get("reason"), str) else "quota_exhausted"
    if not ok:
        result["error"] = data.get("error") if isinstance(data.get("error"), str) and data.get("error") else (
            body.get("msg") or "unknown_error")
    return result


def go_issue(raw: bytes) -> dict:
    body = go_decode(raw)
    data = body.get("data") or {}
    token = data.get("server_token")
    if body["code"] == 0 and isinstance(token, str) and token:
        for key in ("expires_in", "issued_at"):
            if not isinstance(data.get(key), (int, float)):
                raise SDKDecodeError(f"go: {key} is not a number")
        return {"ok": True, "server_token": token}
    error = (data.get("error") if isinstance(data.get("error"), str) and data.get("error")
             else (body.get("msg") or "unknown_error"))
    return {"ok": False, "error": error}


def php_decode(raw: bytes) -> dict | None:
    try:
        body = json.loads(raw)
    except ValueError:
        return None  # request_failed
    return body if isinstance(body, dict) else None


def php_validate(raw: bytes) -> dict:
    body = php_decode(raw)
    if body is None:
        return {"valid": False, "error": "request_failed"}
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    valid = body.get("code") == 0 and type(body.get("code")) is int and bool(
        data.get("valid") if data.get("valid") is not None else data.get("ok"))
    error = (data.get("error") if data.get("error") is not None
             else (body.get("msg") if body.get("msg") is not None else "unknown_error"))
    return {"valid": valid, "degraded": bool(data.get("degraded")), "error": None if valid else error,
            "uid": data.get("uid") if isinstance(data.get("uid"), str) else None,
            "user_ip": (data.get("captcha_args") or {}).get("user_ip", data.get("user_ip"))}


def php_issue_or_moderation(raw: bytes) -> dict:
    body = php_decode(raw)
    if body is None:
        return {"ok": False, "error": "request_failed"}
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    ok = body.get("code") == 0 and type(body.get("code")) is int
    error = (body.get("error") if body.get("error") is not None
             else (data.get("error") if data.get("error") is not None else "unknown_error"))
    return {"ok": ok, "error": None if ok else error, "data": data}


# --- the answers, success and failure, of every endpoint ------------------------------------

def post(client, path, body, headers=DEMO, raw=False):
    if raw:
        return client.post(path, data=body, headers={**headers, "Content-Type": "application/json"})
    return client.post(path, json=body, headers=headers)


def test_validate_success_is_read_by_both_sdks(client, mint):
    token = mint(uid="u-9", client_ip="192.0.2.1")
    raw = post(client, "/v1/validate", {"pass_token": token, "keep_token": True}).data
    go = go_validate(raw)
    assert go == {"valid": True, "degraded": False, "uid": "u-9"}
    php = php_validate(raw)
    assert php["valid"] is True and php["uid"] == "u-9" and php["user_ip"] == "192.0.2.1"


def test_backup_success_is_read_by_both_sdks(client, mint):
    raw = post(client, "/api/validate", {"pass_token": mint(kind="offline")}).data
    assert go_validate(raw)["valid"] is True


@pytest.mark.parametrize("case,expected", [
    ("empty", "empty_token"), ("garbage", "invalid_token"), ("consumed", "token_consumed"),
])
def test_validate_token_failures_are_read_by_both_sdks(client, mint, case, expected):
    token = {"empty": "", "garbage": "pt_nope"}[case] if case != "consumed" else mint()
    if case == "consumed":
        post(client, "/v1/validate", {"pass_token": token})
    raw = post(client, "/v1/validate", {"pass_token": token}).data
    assert go_validate(raw) == {"valid": False, "degraded": False, "error": expected}
    assert php_validate(raw)["error"] == expected and php_validate(raw)["valid"] is False


def test_validate_degraded_is_read_by_both_sdks(client, mint):
    raw = post(client, "/v1/validate", {"pass_token": mint(kind="degraded")}).data
    go = go_validate(raw)
    assert go["valid"] is False and go["degraded"] is True and go["reason"] == "quota_exhausted"
    assert php_validate(raw)["degraded"] is True


@pytest.mark.parametrize("path", ["/v1/validate", "/api/validate"])
@pytest.mark.parametrize("headers,body,raw,expected", [
    ({"X-App-Key": "nope"}, {}, False, "invalid_app_key"),
    ({"X-App-Key": "demo_app", "X-App-Secret": "x"}, {}, False, "invalid_app_secret"),
    ({"X-App-Key": "disabled_app", "X-App-Secret": "disabled_secret"}, {}, False, "app_disabled"),
    (DEMO, b"[]", True, "invalid_request"),
    (DEMO, b"{oops", True, "invalid_request"),
])
def test_validate_request_failures_are_read_by_both_sdks(client, path, headers, body, raw, expected):
    answer = post(client, path, body, headers, raw=raw).data
    assert go_validate(answer) == {"valid": False, "degraded": False, "error": expected}
    assert php_validate(answer)["error"] == expected


def test_issue_success_and_failures_are_read_by_both_sdks(client):
    ok = post(client, "/v1/server/challenge/issue", {"action": "login", "binding_ip": "192.0.2.1", "ttl": 60,
                                                      "max_uses": 2, "bind_uid": "u"}).data
    assert go_issue(ok)["ok"] is True and php_issue_or_moderation(ok)["ok"] is True
    for body, headers, expected in [({"action": ""}, DEMO, "invalid_action"),
                                    ({"action": "x"}, {"X-App-Key": "nope"}, "invalid_app_key"),
                                    ({"action": "x", "ttl": -1}, DEMO, "invalid_request")]:
        raw = post(client, "/v1/server/challenge/issue", body, headers).data
        assert go_issue(raw) == {"ok": False, "error": expected}
        assert php_issue_or_moderation(raw)["error"] == expected


@pytest.mark.parametrize("path,body", [("/v1/moderation/text", {"text": "hello"}),
                                       ("/v1/moderation/check", {"input": [{"type": "text", "text": "hi"}]})])
def test_moderation_answers_are_read_by_both_sdks(client, path, body):
    raw = post(client, path, body).data
    go_decode(raw)
    php = php_issue_or_moderation(raw)
    assert php["ok"] is True and set(php["data"]) == {"flagged", "categories", "content_type"}
    failed = post(client, path, {}, ).data
    assert go_decode(failed)["code"] == 400
    assert php_issue_or_moderation(failed)["error"] in ("empty_text", "empty_input")


@pytest.mark.parametrize("method,path", [("get", "/v1/validate"), ("post", "/v1/unknown"), ("delete", "/api/validate")])
def test_routing_failures_are_still_envelopes(client, method, path):
    raw = getattr(client, method)(path).data
    body = go_decode(raw)
    assert body["code"] != 0 and isinstance(body["data"], dict)
