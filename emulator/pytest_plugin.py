"""pytest plugin (entry point `pytest11`): the `captchala_emulator` fixture.

Fixtures only, imports deferred into them so that loading the plugin costs nothing in test
runs that never use it (pytest-httpserver's shape: one server per session — per xdist
worker — cleared before each test)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

URL_ENV = "CAPTCHALA_EMULATOR_URL"
ADMIN_TOKEN_ENV = "CAPTCHALA_EMULATOR_ADMIN_TOKEN"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("captchala-emulator")
    group.addoption("--captchala-emulator-url", default=None, metavar="URL",
                    help=f"Use a running emulator instead of an in-process one (env {URL_ENV}).")
    group.addoption("--captchala-emulator-admin-token", default=None, metavar="TOKEN",
                    help=f"Admin token of that emulator's control plane (env {ADMIN_TOKEN_ENV}).")


class EmulatorHandle:
    """What a test gets: where the emulator is, the app it uses, and the control plane."""

    def __init__(self, client, *, app_key: str = "demo_app", app_secret: str = "demo_secret",
                 scoped_reset: bool = False):
        self.client = client
        self.url: str = client.url
        self.app_key = app_key
        self.app_secret = app_secret
        self.scoped_reset = scoped_reset
        self._profile_changed = False

    def __repr__(self) -> str:
        return f"<captchala emulator {self.url} app {self.app_key}>"

    @property
    def loader_url(self) -> str:
        return self.url + "/captchala-loader.js"

    @property
    def validate_url(self) -> str:
        return self.url + "/v1/validate"

    @property
    def headers(self) -> dict[str, str]:
        """The X-App-Key / X-App-Secret pair of the handle's app, for server-side calls."""
        return {"X-App-Key": self.app_key, "X-App-Secret": self.app_secret}

    def mint(self, **claims: Any) -> str:
        """A pass token for the handle's app (override app_key, action, client_ip, ttl, kind...)."""
        claims.setdefault("app_key", self.app_key)
        return self.client.mint(**claims)

    def use_profile(self, name_or_profile: str | Mapping[str, Any]) -> dict[str, Any]:
        self._profile_changed = True
        return self.client.use_profile(name_or_profile)

    def clear_profile(self) -> dict[str, Any]:
        self._profile_changed = False
        return self.client.clear_profile()

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        return self.client.advance_clock(seconds)

    def set_clock(self, offset: float) -> dict[str, Any]:
        return self.client.set_clock(offset)

    def requests(self, **filters: Any) -> list[dict[str, Any]]:
        return self.client.requests(**filters)

    def wait_for_request(self, timeout: float = 10.0, **filters: Any) -> dict[str, Any] | None:
        return self.client.wait_for_request(timeout=timeout, **filters)

    def explain(self, token: str) -> dict[str, Any]:
        return self.client.explain(token)

    def reset(self, app_key: str | None = None) -> dict[str, Any]:
        return self.client.reset(app_key)

    def diagnosis(self, since: float | str | None = None) -> list[dict[str, Any]]:
        """Findings for the handle's app (see EmulatorClient.diagnosis)."""
        return self.client.diagnosis(self.app_key, since)

    def audit(self, submit: Callable[[str], bool], **options: Any) -> dict[str, Any]:
        """Audit your app through `submit(token) -> accepted` (see EmulatorClient.audit)."""
        options.setdefault("app_key", self.app_key)
        return self.client.audit(submit, **options)

    def _before_test(self) -> None:
        self.reset(self.app_key if self.scoped_reset else None)

    def _after_test(self) -> None:
        if self._profile_changed:
            self.clear_profile()


@pytest.fixture(scope="session")
def captchala_emulator_settings() -> dict[str, Any]:
    """Override (session scope) to change the in-process emulator's Settings, e.g. `{"apps": path}`."""
    return {}


@pytest.fixture(scope="session")
def captchala_emulator_session(request: pytest.FixtureRequest,
                               captchala_emulator_settings: dict[str, Any]) -> Iterator[EmulatorHandle]:
    """One emulator for the whole session (per xdist worker), not reset between tests."""
    from emulator.client import EmulatorClient

    url = request.config.getoption("--captchala-emulator-url") or os.environ.get(URL_ENV)
    token = request.config.getoption("--captchala-emulator-admin-token") or os.environ.get(ADMIN_TOKEN_ENV)
    if url:
        client = EmulatorClient(url, admin_token=token)
        _check_reachable(client)
        # several xdist workers share one external emulator: a full reset would wipe the others' state
        shared = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1
        yield EmulatorHandle(client, scoped_reset=shared)
        return
    server = _start_in_process(captchala_emulator_settings, token)
    try:
        yield EmulatorHandle(EmulatorClient(server.url, admin_token=token))
    finally:
        server.stop()


@pytest.fixture
def captchala_emulator(captchala_emulator_session: EmulatorHandle) -> Iterator[EmulatorHandle]:
    """The session's emulator, reset before the test (tokens, journal, counters, clock)."""
    handle = captchala_emulator_session
    handle._before_test()
    yield handle
    handle._after_test()


def _start_in_process(overrides: Mapping[str, Any], admin_token: str | None):
    from emulator.app import create_app
    from emulator.server import ThreadServer
    from emulator.settings import Settings

    values: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "workers": 1, "store": "memory://",
                              "quiet": True, "admin_token": admin_token}
    values.update(_checked_settings(overrides, Settings))
    settings = Settings(**values)
    return ThreadServer(create_app(settings), host=settings.host, port=settings.port).start()


def _checked_settings(overrides: Mapping[str, Any], settings_class: type) -> Mapping[str, Any]:
    """The overrides, or a clear failure naming an unknown key and every valid one."""
    import dataclasses

    valid = [f.name for f in dataclasses.fields(settings_class)]
    unknown = [key for key in overrides if key not in valid]
    if unknown:
        pytest.fail(f"captchala_emulator_settings: unknown key {unknown[0]!r} (valid keys: {', '.join(valid)})",
                    pytrace=False)
    return overrides


def _check_reachable(client) -> None:
    try:
        health = client.health()
    except Exception as exc:  # noqa: BLE001 - any failure means the same thing to the user
        pytest.fail(f"captchala emulator at {client.url} is not reachable: {exc}", pytrace=False)
    if health.get("status") != "ok":
        pytest.fail(f"captchala emulator at {client.url} is unhealthy: {health}", pytrace=False)
