"""Property: whatever arrives at an API endpoint — any JSON, any bytes, any headers — the answer
is the envelope {code: int, msg: str, data: object} and never a 5xx (hypothesis, derandomized:
the same 2 000+ cases on every run through the Flask test client for speed, and a few hundred
through a real gunicorn, where real HTTP parsing and the worker's error handling are in the path)."""

from __future__ import annotations

import json

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from emulator.app import create_app
from emulator.settings import Settings
from tests.support.fuzz import (
    API_POSTS,
    VALIDATES,
    assert_envelope,
    bodies,
    content_types,
    credentials,
    extra_headers,
    fuzz,
    json_values,
    methods,
    printable,
    raw_bodies,
    socket_safe_headers,
    tokenish,
)
from tests.support.servers import running_emulator


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "state.db"
    app = create_app(Settings(store=f"sqlite:///{path}", secret="fuzz-secret", seed=0, quiet=True))
    app.logger.disabled = True
    return app.test_client()


@fuzz(1000)
@given(path=st.sampled_from(API_POSTS), body=bodies, headers=credentials())
def test_any_json_body_gets_an_envelope(client, path, body, headers):
    response = client.post(path, data=json.dumps(body), headers={**headers, "Content-Type": "application/json"})
    assert_envelope(response.status_code, response.data, f"POST {path} {body!r:.200}")


@fuzz(700)
@given(path=st.sampled_from(API_POSTS), raw=raw_bodies, headers=credentials(), more=extra_headers,
       content_type=content_types, method=methods)
def test_any_bytes_and_headers_get_an_envelope(client, path, raw, headers, more, content_type, method):
    response = client.open(path, method=method, data=raw, headers={**more, **headers, "Content-Type": content_type})
    assert_envelope(response.status_code, response.data, f"{method} {path} {raw[:120]!r} {content_type!r} {more}")


@fuzz(400)
@given(path=st.sampled_from(VALIDATES), token=tokenish, keep=json_values, client_ip=json_values | printable)
def test_any_token_field_gets_an_envelope(client, path, token, keep, client_ip):
    field = "token" if path == "/v1/challenge/verify" else "pass_token"
    body = {field: token, "keep_token": keep, "client_ip": client_ip}
    response = client.post(path, json=body, headers={"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"})
    assert_envelope(response.status_code, response.data, f"POST {path} {body!r:.200}")


# --- the same property through a real gunicorn ------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    state = tmp_path_factory.mktemp("fuzz-api-gunicorn")
    with running_emulator("--workers", "2", "--threads", "4", "--store", f"sqlite:///{state / 's.db'}",
                          "--secret", "fuzz") as server:
        yield server


@pytest.mark.integration
@fuzz(200)
@given(path=st.sampled_from(API_POSTS), body=bodies.map(lambda b: json.dumps(b).encode()) | raw_bodies,
       headers=credentials(), more=socket_safe_headers, content_type=content_types, method=methods)
def test_gunicorn_answers_any_request_with_an_envelope(served, path, body, headers, more, content_type, method):
    response = requests.request(method, served.url + path, data=body, timeout=10,
                                headers={**more, **headers, "Content-Type": content_type})
    assert_envelope(response.status_code, response.content, f"{method} {path} {body[:120]!r} {content_type!r}")
