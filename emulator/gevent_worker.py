"""gunicorn's gevent worker, patched in a tenth of the time, with TLS handshakes that end.

gevent's `monkey.patch_all()` asks `importlib.metadata` for its plugins 25 times (once per event
of every module it patches), and every ask re-reads the entry points of every installed
distribution: about 250 ms of CPU in each worker before it can answer (about a third of the
whole cold start of `serve` on a 2-core machine). The answer cannot change while one worker
patches, so it is read once per distinct question for the length of the patch, then the real
function is put back.

With TLS, gevent's server did each handshake before gunicorn's handler, with no time limit and no
error handling: a client that stopped inside its handshake held its connection slot for good, and
every failed handshake (the usual first call of `--tls auto` from a client that does not trust the
local CA yet) printed a traceback. Here the handshake is deferred to the handler, which gives it
`keepalive` seconds (what a request head gets) and logs a failure as one line."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache, partial
from importlib import metadata
from typing import Any

import gevent
from gunicorn.workers.ggevent import GeventWorker as _GeventWorker

from .quiet_exit import leave_now


class GeventWorker(_GeventWorker):
    """gunicorn.workers.ggevent.GeventWorker, with the entry points read once while it patches."""

    def patch(self) -> None:
        with entry_points_read_once():
            super().patch()

    def init_process(self) -> None:
        self.cfg.set("ssl_context", handshake_in_handler)  # read when the servers start, after this
        super().init_process()

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        if client.fileno() < 0:  # the client went away before its socket could be wrapped for TLS
            return
        if isinstance(client, ssl.SSLSocket) and not self.handshake(client, addr):
            client.close()
            return
        super().handle(listener, client, addr)

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> None:
        """One request, then a turn for every other connection before this one's next request.

        A greenlet gives way only where it would wait, and a connection whose next request is
        already in its socket (a fast client, a pipelining one) never waits: gunicorn's keep-alive
        loop served it again and again while the other connections' requests sat unread. Under
        `wrk -c32` the bare Flask floor answered at a p50 of 0.5 ms and a p99 of 0.4 to 0.8 s;
        with this yield, p99 8 to 12 ms, for 4 to 7 % fewer req/s at saturation (a connection that
        kept the worker skipped the event loop between its requests; taking turns costs one pass
        of the loop per request). `sleep(0)` resumes this greenlet in the loop's next pass, after
        the I/O that pass finds ready, so no connection waits more than one round of the others
        (`gevent.idle()` could wait for ever under steady load)."""
        super().handle_request(listener_name, req, sock, addr)  # StopIteration: the connection ends here
        gevent.sleep(0)

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """A connection the stopping worker killed at its graceful timeout is closed, not answered.

        A reload (SIGHUP) or stop gives the old worker `graceful_timeout` seconds, then kills the
        greenlets still running. One waiting for its connection's next request took that
        GreenletExit for an application error: gunicorn sent the client an HTTP 500 for a request
        it never made and logged a traceback. The socket is closed after this returns. (A request
        still running is killed inside gunicorn's handler, which ends it without an answer.)"""
        if isinstance(exc, gevent.GreenletExit):
            self.log.debug("connection from %s closed: the worker stopped", _host(addr))
            return
        super().handle_error(req, client, addr, exc)

    def handshake(self, client: ssl.SSLSocket, addr: Any) -> bool:
        """The TLS handshake, within `keepalive` seconds; False (logged in one line) if it fails."""
        done = False
        try:
            with gevent.Timeout(self.cfg.keepalive or 5, False):
                client.do_handshake()
                done = True
        except (ssl.SSLEOFError, ConnectionError) as exc:  # the client went away: nothing to tell
            self.log.debug("TLS handshake with %s ended: %s", _host(addr), exc)
            return False
        except OSError as exc:  # ssl.SSLError among them: what the client refused, or sent instead
            self.log.warning("TLS handshake with %s failed: %s", _host(addr), _reason(exc))
            return False
        if not done:
            self.log.debug("TLS handshake with %s stalled: closed", _host(addr))
        return done

    def handle_quit(self, sig: int, frame: Any) -> None:
        """SIGQUIT, or SIGINT (Ctrl-C reaches every process of the terminal's group): stop at once,
        as gunicorn's worker does, but without its sys.exit inside a greenlet, which gevent printed
        as a failed greenlet with a traceback at every Ctrl-C."""
        self.alive = False
        self.cfg.worker_int(self)
        leave_now()


def handshake_in_handler(_config: Any, default_ssl_context_factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """gunicorn's `ssl_context` hook: its context, whose sockets leave the handshake to the
    handler (gevent's server asks for it at once otherwise), and a client that is gone before its
socket is wrapped is closed quietly (gevent printed a traceback for each)."""
    context = default_ssl_context_factory()
    wrap = partial(context.wrap_socket, do_handshake_on_connect=False)

    def wrap_socket(sock: socket.socket, *args: Any, **kwargs: Any) -> socket.socket:
        try:
            return wrap(sock, *args, **kwargs)
        except OSError:  # gone before it was wrapped (reset, not connected): nothing to serve
            sock.close()
            return sock  # closed: the handler leaves it alone

    context.wrap_socket = wrap_socket  # type: ignore[method-assign,assignment]
    return context


def _host(addr: Any) -> str:
    return str(addr[0]) if isinstance(addr, tuple) and addr else str(addr)


def _reason(exc: BaseException) -> str:
    """`tlsv1 alert unknown ca`, not the whole `[SSL: ...] ... (_ssl.c:1006)`."""
    reason = getattr(exc, "reason", None)
    text = reason.replace("_", " ").lower() if isinstance(reason, str) else str(exc)
    if reason == "TLSV1_ALERT_UNKNOWN_CA":
        text += " (the client does not trust this server's certificate: give it the CA the banner names)"
    return text


@contextmanager
def entry_points_read_once() -> Iterator[None]:
    """While inside: `importlib.metadata.entry_points(**selection)` answers each selection once.

    The worker is single-threaded while it patches (gunicorn patches first thing in the forked
    worker), so nothing else sees the cached function."""
    real = metadata.entry_points
    metadata.entry_points = cache(real)  # type: ignore[assignment]
    try:
        yield
    finally:
        metadata.entry_points = real
