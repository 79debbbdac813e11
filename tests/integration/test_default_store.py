"""Item 1 of issue 13: two `serve` processes started with defaults never share state, and one
instance restarted on the same port keeps its state (one SQLite file per port)."""

from __future__ import annotations

import os
import socket

import pytest
import requests

from tests.support.servers import running_emulator

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _defaults_env(state_home) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPTCHALA_EMULATOR_")}
    return {**env, "XDG_STATE_HOME": str(state_home)}


def _serve_with_defaults(port: int, env: dict[str, str]):
    # start_emulator adds `--port 0`; a later --port wins in click, so this is `serve --port N` with defaults
    return running_emulator("--port", str(port), env=env)


def test_two_default_instances_never_share_state(tmp_path):
    env = _defaults_env(tmp_path)
    port_a, port_b = _free_port(), _free_port()
    with _serve_with_defaults(port_a, env) as a, _serve_with_defaults(port_b, env) as b:
        requests.put(a.url + "/_emulator/profile", json={"name": "main-down"}, timeout=10).raise_for_status()
        a.mint()
        assert requests.get(b.url + "/_emulator/profile", timeout=10).json()["active"] is False
        assert requests.get(b.url + "/_emulator/requests", timeout=10).json()["requests"] == []
        store_a = requests.get(a.url + "/_emulator/health", timeout=10).json()["store"]
        store_b = requests.get(b.url + "/_emulator/health", timeout=10).json()["store"]
    assert store_a != store_b
    assert store_a == f"sqlite:///{tmp_path / 'captchala-emulator' / f'state-{port_a}.db'}"


def test_a_restart_on_the_same_port_keeps_its_state(tmp_path):
    env = _defaults_env(tmp_path)
    port = _free_port()
    with _serve_with_defaults(port, env) as first:
        token = first.mint()
        assert first.api("/v1/validate", {"pass_token": token}).json()["data"]["valid"] is True
    with _serve_with_defaults(port, env) as second:
        assert second.api("/v1/validate", {"pass_token": token}).json()["data"]["error"] == "token_consumed"
