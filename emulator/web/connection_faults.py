"""Socket-level faults: the client connection reset, held, cut short, garbled or dribbled.

They work on the raw client socket the WSGI server exposes (`gunicorn.socket` under gunicorn,
`werkzeug.socket` under the werkzeug thread server), so what a client sees is real TCP."""

from __future__ import annotations

import os
import select
import socket
import struct
import time
from collections.abc import Callable, Iterator

from flask import Response, request

from ..faults.effects import Connection
from .context import drain_body


def raw_socket() -> socket.socket | None:
    """The client connection's socket, when the WSGI server exposes it."""
    return request.environ.get("gunicorn.socket") or request.environ.get("werkzeug.socket")


def abandon(sock: socket.socket, *, rst: bool) -> None:
    """Drop the client connection now: RST (SO_LINGER 0) or FIN, and leave the server a dead
    socket in its place, so its own later writes fail quietly (EPIPE) instead of reaching the client."""
    try:
        if rst:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        dead, peer = socket.socketpair()
        peer.close()
        os.dup2(dead.fileno(), sock.fileno())
        dead.close()
    except (OSError, ValueError):
        pass


def wait_for_hangup(sock: socket.socket, max_s: float) -> bool:
    """Hold the request until the client closes its side (True) or max_s passes (False).

    The request body was drained first, so the socket turns readable only when the client
    hangs up (or sends something else, which also ends the wait)."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR)
    deadline = time.monotonic() + max_s
    while (left := deadline - time.monotonic()) > 0:
        if poller.poll(min(left, 1.0) * 1000):
            return True
    return False


def truncated(response: Response, conn: Connection, _sleep: Callable[[float], None]) -> Response:
    """Content-Length of the whole body, only a part of it sent, then the connection closed."""
    body = body_bytes(response)
    cut = max(1, int(len(body) * conn.fraction)) if body else 0
    sock = raw_socket()

    def stream() -> Iterator[bytes]:
        yield body[:cut]
        if sock is not None:
            abandon(sock, rst=False)

    return _streamed(response, stream(), len(body))


def malformed(response: Response, conn: Connection, _sleep: Callable[[float], None]) -> Response:
    """A complete HTTP answer whose JSON body is cut short: it no longer parses."""
    body = body_bytes(response).rstrip()
    cut = min(max(1, int(len(body) * conn.fraction)), max(1, len(body) - 1))  # a proper prefix never parses
    response.set_data(body[:cut])
    return response


def slow(response: Response, conn: Connection, sleep: Callable[[float], None]) -> Response:
    """The whole body, dribbled in `chunks` pieces with `chunk_delay_ms` between them."""
    body = body_bytes(response)
    size = max(1, -(-len(body) // conn.chunks))
    pieces = [body[i:i + size] for i in range(0, len(body), size)] or [b""]

    def stream() -> Iterator[bytes]:
        for i, piece in enumerate(pieces):
            if i:
                sleep(conn.chunk_delay_ms / 1000.0)
            yield piece

    return _streamed(response, stream(), len(body))


def body_bytes(response: Response) -> bytes:
    """The answer's bytes, even for a file sent in direct-passthrough mode."""
    response.direct_passthrough = False
    data = response.get_data()
    response.close()
    return data


def _streamed(template: Response, stream: Iterator[bytes], length: int) -> Response:
    out = Response(stream, status=template.status_code, headers=list(template.headers.items()))
    out.headers["Content-Length"] = str(length)
    return out


def drain() -> None:
    """Read the request body so the socket turns readable only when the client hangs up."""
    drain_body()
