"""Serving: gunicorn (gevent or threaded workers) for `serve`, a werkzeug thread server for tests."""

from __future__ import annotations

import gc
import importlib
import multiprocessing
import socket
import sys
import threading
from collections.abc import Callable

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from .config_files import directory_problem
from .errors import ConfigError
from .quiet_exit import exit_quietly
from .runtime import Runtime, build_runtime
from .settings import Settings

# Open connections (greenlets) per gevent worker, gunicorn's default; beyond it, new
# connections wait in the listen backlog until one closes.
GEVENT_CONNECTIONS = 1000
# gunicorn's gevent worker, patched without re-reading every package's entry points 25 times (named,
# not imported: gunicorn imports it in the master, and only `serve` needs gevent)
GEVENT_WORKER = "emulator.gevent_worker.GeventWorker"
GTHREAD_WORKER = "emulator.gthread_worker.ThreadWorker"  # gunicorn's, with a limit on reading a head
# What a worker serves with (the app factory, every blueprint and the domain behind them): `serve`
# imports it in the master, before the fork, so every worker shares one copy of its pages.
SERVING_MODULES = ("emulator.app",)


class GunicornServer(BaseApplication):
    """gunicorn with `gevent` workers (default) or `gthread` workers (`--worker-class`).

    gevent: every connection is a greenlet, so whatever holds a request (a latency fault, a
    client trickling its headers, a long-poll) costs a few KiB, never a thread the control plane
    or other clients need; gunicorn patches the standard library in each worker before the app
    is loaded. gthread: `threads` threads per worker, each held connection holds one.

    The Runtime (store schema, signing secret) is prepared once in the master; each worker
    builds its own app after fork, so store connections are never shared across processes.
    Memory: the master imports what the workers serve with (`prepare`) and freezes its objects
    before each fork (`share_with_workers`), so those pages stay shared with every worker.

    `reuse_port`: each worker listens on its own SO_REUSEPORT socket and the kernel spreads
    new connections over them. With one shared socket, gthread workers race for accepts and
    keep-alive pins connections to the winner: `python -m emulator.bench` measured 32/0 or
    28/4 splits in half of the runs (half the CPU idle); with reuse_port, never worse than 20/12."""

    def __init__(self, settings: Settings, on_ready: Callable[[str, int], None] | None = None,
                 gunicorn_options: dict | None = None):
        self.settings = settings
        self.on_ready = on_ready
        self.extra = gunicorn_options or {}
        self._port_hold: socket.socket | None = None
        self._announced = multiprocessing.Value("b", 0)  # shared by the workers: one banner only
        self._listening = multiprocessing.Value("i", 0)  # workers whose own socket listens now
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        port = self._hold_free_port(s.host) if s.port == 0 else s.port  # workers bind it themselves
        options = {
            "bind": [f"[{s.host}]:{port}" if ":" in s.host else f"{s.host}:{port}"],
            "workers": s.workers,
            **worker_options(s),
            "timeout": 120,
            "graceful_timeout": 3,
            "keepalive": 5,
            "control_socket_disable": True,
            "accesslog": None,
            "loglevel": "warning",
            "reuse_port": True,
            "pre_fork": share_with_workers,
            "when_ready": self._when_ready,
            "post_fork": self._worker_forked,
            "post_worker_init": self._worker_ready,
            "worker_exit": self._worker_exit,
        }
        if s.tls_cert and s.tls_key:
            options.update(certfile=s.tls_cert, keyfile=s.tls_key)
        options.update(self.extra)
        for key, value in options.items():
            self.cfg.set(key, value)

    def _hold_free_port(self, host: str) -> int:
        """--port 0 with per-worker sockets: pick the port once in the master and hold it with a
        bound, never-listening SO_REUSEPORT socket (it gets no connections) for the server's life.
        Once: gunicorn loads the config again on SIGHUP, and new workers must bind the same port."""
        if self._port_hold is not None:
            return int(self._port_hold.getsockname()[1])
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._port_hold = socket.socket(family, socket.SOCK_STREAM)
        self._port_hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self._port_hold.bind((host, 0))
        return self._port_hold.getsockname()[1]

    def _when_ready(self, arbiter) -> None:
        if arbiter.LISTENERS:  # one shared socket (gunicorn without per-worker reuse_port sockets)
            self._announce(arbiter.LISTENERS[0].sock.getsockname()[:2])

    def _worker_forked(self, _arbiter, worker) -> None:
        """gunicorn's post_fork hook: the new worker's own socket listens from here on (gunicorn
        made it just before), so the kernel queues its share of new connections until it accepts."""
        if worker.sockets:
            with self._listening.get_lock():
                self._listening.value += 1
            worker.counted_listening = True

    def _worker_ready(self, worker) -> None:
        """Per-worker sockets: the banner comes once a worker is ready and every worker listens.

        Announcing while a worker had no socket yet let a client that started on the banner send
        all its connections to the others (a 4-worker test saw 16 requests all land on one pid)."""
        if not worker.sockets:
            return
        with self._listening.get_lock():
            everyone = self._listening.value >= self.settings.workers
        if everyone:
            listener = worker.sockets[0]  # gunicorn's listener; the gevent worker rewraps it as a bare socket
            self._announce(getattr(listener, "sock", listener).getsockname()[:2])

    def _worker_exit(self, arbiter, worker) -> None:
        """A worker that was counted as listening is not any more (a reload, a crash, a stop)."""
        if getattr(worker, "counted_listening", False):
            with self._listening.get_lock():
                self._listening.value -= 1
        exit_quietly(arbiter, worker)

    def workers_listening(self) -> int:
        """How many workers have their socket now (read by health in any worker: shared memory)."""
        return int(self._listening.value)

    def _announce(self, address) -> None:
        with self._announced.get_lock():
            if self._announced.value:
                return
            self._announced.value = 1
        if self.on_ready:
            self.on_ready(address[0], address[1])

    def run(self) -> None:
        """gunicorn's run, with workers forked back to back (see `ForkAtOnce`)."""
        try:
            ForkAtOnce(self).run()
        except RuntimeError as exc:  # what gunicorn's own run does with a startup error
            print(f"\nError: {exc}\n", file=sys.stderr)
            sys.stderr.flush()
            sys.exit(1)

    def load(self) -> Flask:
        from .app import create_app

        return create_app(self.settings, workers_listening=self.workers_listening)


class ForkAtOnce(Arbiter):
    """gunicorn's master, without its random pause of up to 0.1 s after forking each worker.

    Health answers `ok` only once every worker has its own listening socket, which gunicorn makes
    right after the fork: the pause delayed that by 0 to 0.1 s, a varying part of every start."""

    def spawn_workers(self) -> None:
        for _ in range(self.num_workers - len(self.WORKERS)):
            self.spawn_worker()


def share_with_workers(_arbiter: object, _worker: object) -> None:
    """gunicorn's pre_fork hook: move every object the master holds to the GC's permanent generation.

    A forked worker shares the master's pages until it writes to one. Its garbage collections
    would write the GC header of every object it inherited and so copy most of the interpreter's
    heap into each worker (`python -m emulator.bench`, master + 2 gevent workers after the load,
    together with `import_serving_modules`: PSS 78.5 -> 60.9 MiB). Frozen objects are never
    collected: they are the master's modules and settings, alive for the server's life anyway.
    Nothing is collected first: that would leave freed holes in shared pages for the workers to
    fill, and so copy.

    Safe with gevent, which patches a worker after the fork: freezing allocates nothing and
    creates no lock, and gevent looks among GC objects only for locks held while it patches, of
    which a freshly forked worker has none (logging re-creates its locks in the child)."""
    gc.freeze()


def worker_options(s: Settings) -> dict:
    if s.worker_class == "gthread":
        return {"worker_class": GTHREAD_WORKER, "threads": s.threads}
    if s.worker_class != "gevent":
        raise ConfigError(f"--worker-class {s.worker_class!r}: expected gevent or gthread")
    return {"worker_class": GEVENT_WORKER, "worker_connections": GEVENT_CONNECTIONS}


def prepare(settings: Settings) -> Runtime:
    """Fail fast in the master: claim the port, open the store, create the schema and the shared
    secret, load the apps file and the profile. Raises ConfigError with one clear line."""
    worker_options(settings)
    if settings.profiles_dir and (problem := directory_problem(settings.profiles_dir)):
        raise ConfigError(f"--profiles-dir {settings.profiles_dir}: {problem}")
    if settings.port:
        claim_port(settings.host, settings.port).detach()  # the claim lasts as long as this process
        check_port_free(settings.host, settings.port)
    rt = build_runtime(settings)
    try:
        rt.faults.start(settings.profile, rt.clock.now())  # every worker sees it through the store
    finally:
        rt.store.close()
    import_serving_modules()
    return rt


def import_serving_modules() -> None:
    """Import in the master what every worker serves with, so that its pages are shared by all
    workers instead of imported once per worker after the fork. Safe with gevent's patching in
    the worker only while these modules bind no thread, socket or sleep primitive at import time
    (a global, a default argument): tests/integration/test_worker_memory.py checks that inside
    real gevent workers."""
    for module in SERVING_MODULES:
        importlib.import_module(module)


def claim_port(host: str, port: int) -> socket.socket:
    """Claim `port` for this emulator before anything binds it, or raise ConfigError.

    Workers bind with SO_REUSEPORT, so two emulators started at the same moment could both pass
    the check below and then share the port. The claim is an abstract Unix socket named after
    the port: its namespace is the network namespace's, like the port's, bind is atomic, and the
    kernel drops the name when the last process holding it exits (no stale lock file). Linux only;
    elsewhere the check below is all there is."""
    claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if not sys.platform.startswith("linux"):
        return claim
    try:
        claim.bind(f"\0captchala-emulator-port-{port}")
    except OSError:
        claim.close()
        raise ConfigError(f"--port {port}: {host}:{port} is already in use "
                          "(another captchala-emulator is starting or running on it)") from None
    return claim


def check_port_free(host: str, port: int) -> None:
    """Workers bind with SO_REUSEPORT, so a second emulator on a taken port would silently share
    its traffic: refuse to start instead (a plain bind fails while anyone listens there)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers are fine
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"--port {port}: {host}:{port} is already in use ({exc.strerror})") from None


class ThreadServer:
    """A werkzeug server in a background thread (pytest plugin, in-process tests)."""

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 0):
        from werkzeug.serving import WSGIRequestHandler, make_server

        class QuietHandler(WSGIRequestHandler):
            """No werkzeug access log: its lines carry whole tokens in URLs; the emulator logs
            one redacted line per API request itself (emulator.logs)."""

            def log_request(self, code="-", size="-") -> None:
                pass

        self._server = make_server(host, port, app, threaded=True, request_handler=QuietHandler)
        self.host, self.port = host, self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="captchala-emulator", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ThreadServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
