"""pytest plugin (entry point `pytest11`): the `captchala_emulator` fixture.

Fixtures only, imports deferred into them so that loading the plugin costs nothing in test
runs that never use it (pytest-httpserver's shape: one server per session — per xdist
worker — cleared before each test)."""

from __future__ import annotations

import os
import secrets
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


class _Session:
    """What every handle of one test session shares: the client, the apps it made, and how it resets.

    In-process (the emulator is the session's own): a full reset before each test. External (an
    emulator other runs may share): the session works in apps of its own — runtime apps with unique
    keys, copies of the built-ins it asks for — resets only those and removes them at the end."""

    def __init__(self, client, *, external: bool):
        self.client = client
        self.external = external
        self.created: list[str] = []
        self.handles: dict[str, EmulatorHandle] = {}
        self.profile_changed = False
        self._tag = f"{os.getpid()}_{secrets.token_hex(4)}"
        self._count = 0

    def unique_key(self, base: str) -> str:
        self._count += 1
        return f"pytest_{base}_{self._tag}_{self._count}"

    def create(self, options: Mapping[str, Any]) -> EmulatorHandle:
        app = self.client.add_app(**options)
        self.created.append(app["app_key"])
        return EmulatorHandle(self.client, app["app_key"], app["app_secret"], session=self)

    def copy_of(self, app_key: str) -> EmulatorHandle:
        """A handle for a built-in or apps-file app: the app itself in-process, a private copy outside."""
        if app_key not in self.handles:
            known = {a["app_key"]: a for a in self.client.apps()}
            if app_key not in known:
                raise LookupError(f"no app {app_key!r} on {self.client.url} (known: {', '.join(sorted(known))})")
            app = known[app_key]
            if self.external:
                key = self.unique_key(app_key)
                options = {k: v for k, v in app.items() if k in COPIED_FIELDS}
                self.handles[app_key] = self.create({**options, "app_key": key, "app_secret": key + "_secret"})
            else:
                self.handles[app_key] = EmulatorHandle(self.client, app_key, app["app_secret"], session=self)
        return self.handles[app_key]

    def main_handle(self) -> EmulatorHandle:
        """The fixture's own handle: demo_app (outside: a copy of it); without the built-in apps,
        the first app (outside: a new runtime app)."""
        known = [a for a in self.client.apps() if a["app_key"] == "demo_app"] or self.client.apps()[:1]
        if known and (known[0]["app_key"] == "demo_app" or not self.external):
            return self.copy_of(known[0]["app_key"])
        key = self.unique_key("app")
        return self.create({"app_key": key, "app_secret": key + "_secret"})

    def before_test(self) -> None:
        if not self.external:
            self.client.reset()
            return
        for app_key in self.created:
            self.client.reset(app_key)

    def after_test(self) -> None:
        if self.profile_changed:
            self.profile_changed = False
            self.client.clear_profile()

    def close(self) -> None:
        for app_key in self.created:
            try:
                self.client.remove_app(app_key)
            except Exception:  # noqa: BLE001 - the emulator may be gone already; nothing else to clean
                pass


# the keys of GET /_emulator/apps that POST /_emulator/apps takes back (the apps-file keys)
COPIED_FIELDS = ("name", "pass_token_ttl", "server_token_required", "ip_binding", "disabled", "risk_score",
                 "widget", "rate_limit", "quota", "moderation", "always_fail")


class EmulatorHandle:
    """What a test gets: where the emulator is, the app it uses, and the control plane."""

    def __init__(self, client, app_key: str = "demo_app", app_secret: str = "demo_secret", *,
                 session: _Session | None = None):
        self._session = session or _Session(client, external=False)
        self.client = client
        self.url: str = client.url
        self.app_key = app_key
        self.app_secret = app_secret

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

    def app(self, app_key: str) -> EmulatorHandle:
        """A handle for a built-in or apps-file app (on an external emulator: the session's own copy of it)."""
        return self._session.copy_of(app_key)

    def new_app(self, **options: Any) -> EmulatorHandle:
        """A handle for a new runtime app (apps-file keys; app_key and app_secret are made up if left out)."""
        key = options.pop("app_key", None) or self._session.unique_key("app")
        return self._session.create({"app_secret": key + "_secret", **options, "app_key": key})

    def mint(self, **claims: Any) -> str:
        """A pass token for the handle's app (override app_key, action, client_ip, ttl, kind...)."""
        claims.setdefault("app_key", self.app_key)
        return self.client.mint(**claims)

    def use_profile(self, name_or_profile: str | Mapping[str, Any]) -> dict[str, Any]:
        self._session.profile_changed = True
        return self.client.use_profile(name_or_profile)

    def clear_profile(self) -> dict[str, Any]:
        self._session.profile_changed = False
        return self.client.clear_profile()

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        return self.client.advance_clock(seconds)

    def set_clock(self, offset: float) -> dict[str, Any]:
        return self.client.set_clock(offset)

    def requests(self, **filters: Any) -> list[dict[str, Any]]:
        """Journal entries; on an external emulator only this handle's app's unless `app_key` is given."""
        return self.client.requests(**self._scoped(filters))

    def wait_for_request(self, timeout: float = 10.0, **filters: Any) -> dict[str, Any] | None:
        return self.client.wait_for_request(timeout=timeout, **self._scoped(filters))

    def explain(self, token: str) -> dict[str, Any]:
        return self.client.explain(token)

    def reset(self, app_key: str | None = None) -> dict[str, Any]:
        """Reset one app, or everything in-process; on an external emulator, the handle's app by default."""
        if app_key is None and self._session.external:
            app_key = self.app_key
        return self.client.reset(app_key)

    def diagnosis(self, since: float | str | None = None) -> list[dict[str, Any]]:
        """Findings for the handle's app (see EmulatorClient.diagnosis)."""
        return self.client.diagnosis(self.app_key, since)

    def audit(self, submit: Callable[[str], bool], **options: Any) -> dict[str, Any]:
        """Audit your app through `submit(token) -> accepted` (see EmulatorClient.audit)."""
        options.setdefault("app_key", self.app_key)
        return self.client.audit(submit, **options)

    def _scoped(self, filters: dict[str, Any]) -> dict[str, Any]:
        if self._session.external:
            filters.setdefault("app_key", self.app_key)
        return filters


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
        session = _Session(client, external=True)
        try:
            # other runs may share this emulator: work in an app of our own, a copy of demo_app
            yield session.main_handle()
        finally:
            session.close()
        return
    server = _start_in_process(captchala_emulator_settings, token)
    try:
        yield _Session(EmulatorClient(server.url, admin_token=token), external=False).main_handle()
    finally:
        server.stop()


@pytest.fixture
def captchala_emulator(captchala_emulator_session: EmulatorHandle) -> Iterator[EmulatorHandle]:
    """The session's emulator, reset before the test (tokens, journal, counters, clock)."""
    session = captchala_emulator_session._session
    session.before_test()
    yield captchala_emulator_session
    session.after_test()


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
