"""Serving: gunicorn (threaded workers) for `serve`, a werkzeug thread server for tests."""

from __future__ import annotations

import socket
import sys
import threading
from typing import Callable

from flask import Flask
from gunicorn.app.base import BaseApplication

from .runtime import Runtime, build_runtime
from .settings import Settings


class GunicornServer(BaseApplication):
    """gunicorn with `gthread` workers: injected latency blocks one thread, never the worker.

    The Runtime (store schema, signing secret) is prepared once in the master; each worker
    builds its own app after fork, so store connections are never shared across processes."""

    def __init__(self, settings: Settings, on_ready: Callable[[str, int], None] | None = None,
                 gunicorn_options: dict | None = None):
        self.settings = settings
        self.on_ready = on_ready
        self.extra = gunicorn_options or {}
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        options = {
            "bind": [f"[{s.host}]:{s.port}" if ":" in s.host else f"{s.host}:{s.port}"],
            "workers": s.workers,
            "worker_class": "gthread",
            "threads": s.threads,
            "timeout": 120,
            "graceful_timeout": 3,
            "keepalive": 5,
            "control_socket_disable": True,
            "accesslog": None,
            "loglevel": "warning",
            "when_ready": self._when_ready,
        }
        if s.tls_cert and s.tls_key:
            options.update(certfile=s.tls_cert, keyfile=s.tls_key)
        options.update(self.extra)
        for key, value in options.items():
            self.cfg.set(key, value)

    def _when_ready(self, arbiter) -> None:
        host, port = arbiter.LISTENERS[0].sock.getsockname()[:2]
        if self.on_ready:
            self.on_ready(host, port)

    def load(self) -> Flask:
        from .app import create_app

        return create_app(self.settings)


def prepare(settings: Settings) -> Runtime:
    """Fail fast in the master: open the store, create the schema and the shared secret,
    load the apps file and the profile. Raises ConfigError with one clear line."""
    rt = build_runtime(settings)
    rt.store.close()
    return rt


class ThreadServer:
    """A werkzeug server in a background thread (pytest plugin, in-process tests)."""

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 0):
        from werkzeug.serving import make_server

        self._server = make_server(host, port, app, threaded=True)
        self.host, self.port = host, self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="captchala-emulator", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "ThreadServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def eprint(*args) -> None:
    print(*args, file=sys.stderr, flush=True)
