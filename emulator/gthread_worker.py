"""gunicorn's gthread worker, with a time limit on reading a request's head.

gunicorn's gevent worker gives every head read `keepalive` seconds. Its gthread worker does not:
once a connection's first byte has come, a pool thread reads the request line and headers with no
limit, so a client that stops in the middle holds that thread for good, and `--threads` such
clients freeze the worker (health never answers).

Here the worker's main loop, which already wakes at least once a second to expire idle
connections, also shuts down the socket of a connection whose head has been read for longer than
`keepalive`. The blocked read in the pool thread then ends as if the client had hung up: gunicorn
logs that at debug level, closes the connection and frees the thread. A shutdown, not a socket
timeout: gunicorn sets the socket blocking (no timeout) just before it parses, and a timeout would
reach its handler as a socket error it logs with a traceback.

Once the head is read the body has its own limit (`--body-timeout`, in web/context.py).

Two more of its habits are mended, both in how a connection ends:
- gunicorn closes a connection it does not keep alive (HTTP/1.0, `Connection: close`, an error)
  on the main thread, and that close waits up to 2 s for the client to hang up, so every client
  that kept its socket open stopped accepts, keep-alive and finished requests for 2 s. Here the
  same linger (half-close, drain what the client still sends, close at its hang-up or after 2 s)
  is left to the main loop's poller and never blocks it.
- A TLS client that went away inside its handshake had its socket closed in the handler, then
  gunicorn's close failed on it and counted the connection out a second time: the count went
  negative, and a stopping worker no longer waited for requests in flight. A closed connection
  is now left alone.
And a stopping worker goes on accepting until it exits (see `set_accept_enabled`)."""

from __future__ import annotations

import errno
import socket
import threading
import time
from collections import deque
from functools import partial
from selectors import EVENT_READ
from typing import Any

from gunicorn import util
from gunicorn.workers import gthread

# The raw socket's shutdown and read, also for a TLS socket: ssl.SSLSocket's own shutdown drops
# its TLS state, which a pool thread may be using at that moment, and a lingering client's bytes
# are only counted and dropped.
_shutdown = socket.socket.shutdown
_recv = socket.socket.recv
LINGER_S = 2.0  # gunicorn's wait for a client to hang up after the server's side is closed
LINGER_DRAIN = 65536  # bytes read (and dropped) from a lingering client at most


class _Conn(gthread.TConn):
    """gunicorn's connection, whose graceful close goes to the worker's poller."""

    def __init__(self, worker: ThreadWorker, *args: Any) -> None:
        super().__init__(*args)
        self.worker = worker
        self.drained = 0

    def close(self, graceful: bool = False) -> None:
        if self.sock.fileno() < 0:  # closed by gunicorn's handler already (a TLS client gone mid-handshake)
            return
        if graceful:
            self.worker.linger(self)
        else:
            super().close()


class ThreadWorker(gthread.ThreadWorker):
    """gunicorn.workers.gthread.ThreadWorker, whose threads never wait longer than `keepalive`
    for the rest of a request's head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._heads_lock = threading.Lock()
        self._reading_heads: dict[int, tuple[float, Any]] = {}  # id(conn): (deadline, conn)
        self._lingering: deque[tuple[float, _Conn]] = deque()  # oldest first: (deadline, conn)

    def accept(self, listener: Any) -> None:
        """gunicorn's accept, with this worker's kind of connection."""
        try:
            client_sock, client_addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        client_sock.setblocking(True)
        self.enqueue_req(_Conn(self, self.cfg, client_sock, client_addr, listener.getsockname()))

    def set_accept_enabled(self, enabled: bool) -> None:
        """gunicorn's switch, except that a stopping worker goes on accepting until it exits.

        Each worker listens on a socket of its own (SO_REUSEPORT), which the kernel keeps giving
        its share of new connections for as long as it is open. gunicorn's stopping worker
        stopped accepting but kept the socket open while it finished (up to its graceful
        timeout), so those connections waited unanswered and were reset when it exited: about
        half of those opened during a SIGHUP reload. Closing the socket at once instead refuses
        every new connection until the new worker listens. Accepted, they are answered (with
        `Connection: close`, as gunicorn answers every request of a stopping worker)."""
        if enabled or self.alive:
            super().set_accept_enabled(enabled)

    def linger(self, conn: _Conn) -> None:
        """On the main thread: gunicorn's graceful close (RFC 9112 9.6: half-close, then read what
        the client still sends until it hangs up), with the waiting done by the poller."""
        sock = conn.sock
        try:
            _shutdown(sock, socket.SHUT_WR)
            sock.setblocking(False)
            self.poller.register(sock, EVENT_READ, partial(self._drain, conn))
        except (OSError, ValueError, KeyError):
            util.close(sock)
            return
        self._lingering.append((time.monotonic() + LINGER_S, conn))

    def _drain(self, conn: _Conn, sock: Any) -> None:
        try:
            data = _recv(sock, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        conn.drained += len(data)
        if not data or conn.drained >= LINGER_DRAIN:
            self._end_linger(conn)

    def _end_linger(self, conn: _Conn) -> None:
        if conn.sock.fileno() < 0:
            return  # ended already (hung up before its deadline)
        try:
            self.poller.unregister(conn.sock)
        except (OSError, KeyError, ValueError):
            pass
        util.close(conn.sock)

    def murder_keepalived(self, force: bool = False) -> None:
        """gunicorn's expiry of idle connections; lingering ones end at their deadline too (all of
        them when the worker stops: `force`)."""
        super().murder_keepalived(force)
        now = time.monotonic()
        while self._lingering and (force or self._lingering[0][0] <= now):
            self._end_linger(self._lingering.popleft()[1])

    def handle(self, conn: Any) -> Any:
        """gunicorn's handling, with the head's clock started once the first byte is there."""
        if not conn.initialized and not conn.data_ready and not conn.wait_for_data(gthread.DEFAULT_WORKER_DATA_TIMEOUT):
            return gthread._DEFER  # as gunicorn's own handle does: nothing came, back to the poller
        deadline = time.monotonic() + float(self.cfg.keepalive or gthread.DEFAULT_WORKER_DATA_TIMEOUT)
        with self._heads_lock:
            self._reading_heads[id(conn)] = (deadline, conn)
        try:
            return super().handle(conn)  # the first byte is there: gunicorn does not wait again
        finally:
            self._head_read(conn)

    def handle_request(self, req: Any, conn: Any) -> Any:
        self._head_read(conn)
        return super().handle_request(req, conn)

    def _head_read(self, conn: Any) -> None:
        with self._heads_lock:
            self._reading_heads.pop(id(conn), None)

    def murder_pending(self) -> None:
        """gunicorn's main loop calls this at least once a second, also while the worker stops."""
        super().murder_pending()
        self.cut_stalled_heads(time.monotonic())

    def cut_stalled_heads(self, now: float) -> None:
        """Shut down every connection whose head is still being read after its deadline (an
        HTTP/2 connection's frames are gunicorn's own business: never cut here)."""
        with self._heads_lock:
            late = [conn for deadline, conn in self._reading_heads.values()
                    if deadline <= now and not conn.is_http2]
            for conn in late:
                del self._reading_heads[id(conn)]
                try:
                    _shutdown(conn.sock, socket.SHUT_RDWR)
                except OSError:
                    pass  # already gone: the thread's read ends anyway
        if late:
            self.log.debug("Closed %d connection(s) whose request head stalled", len(late))
