"""Shared fixtures: a fresh app per test on a temp SQLite store, a fixed secret, seed 0,
and a controllable real-time source so no test waits for time to pass."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from emulator.app import create_app
from emulator.runtime import build_runtime
from emulator.settings import Settings
from tests.support.apps import DEMO
from tests.support.redis import redis_server, redis_url  # noqa: F401  (fixtures: a real redis-server)


class FakeTime:
    """An injectable real-time source (the Clock adds the shared virtual offset on top)."""

    def __init__(self, start: float = 1_800_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class BufferedClient(FlaskClient):
    """A test client that reads every answer whole and closes it, as a real server does: a static
    file's descriptor is never left to the garbage collector (the suite turns ResourceWarning into an error)."""

    def open(self, *args: Any, buffered: bool = True, **kwargs: Any) -> Any:
        return super().open(*args, buffered=buffered, **kwargs)


@pytest.fixture(autouse=True, scope="session")
def buffered_test_clients() -> Iterator[None]:
    """Every `app.test_client()` of the suite is a BufferedClient."""
    saved, Flask.test_client_class = Flask.test_client_class, BufferedClient
    yield
    Flask.test_client_class = saved


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(store=f"sqlite:///{tmp_path / 'state.db'}", secret="test-secret", seed=0, quiet=True)


@pytest.fixture
def runtime(settings, fake_time):
    rt = build_runtime(settings, real_time=fake_time)
    yield rt
    rt.store.close()


@pytest.fixture
def app(runtime):
    return create_app(runtime=runtime)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def mint(client):
    """Mint a pass token through the control plane: mint(app_key=..., action=..., ...)."""

    def _mint(**claims) -> str:
        body = {"app_key": "demo_app", "action": "login", **claims}
        response = client.post("/_emulator/pass-tokens", json=body)
        assert response.status_code == 201, response.json
        return response.json["pass_token"]

    return _mint


@pytest.fixture
def validate(client):
    """POST /v1/validate with an app's credentials; returns the JSON body."""

    def _validate(token, *, headers=None, path="/v1/validate", **fields):
        response = client.post(path, json={"pass_token": token, **fields}, headers=headers or DEMO)
        assert response.status_code == 200
        return response.json

    return _validate
