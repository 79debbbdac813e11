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

Once the head is read the body has its own limit (`--body-timeout`, in web/context.py)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from gunicorn.workers import gthread

# The raw socket's shutdown, also for a TLS socket: ssl.SSLSocket's own drops its TLS state,
# which the pool thread may be using at that moment.
_shutdown = socket.socket.shutdown


class ThreadWorker(gthread.ThreadWorker):
    """gunicorn.workers.gthread.ThreadWorker, whose threads never wait longer than `keepalive`
    for the rest of a request's head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._heads_lock = threading.Lock()
        self._reading_heads: dict[int, tuple[float, Any]] = {}  # id(conn): (deadline, conn)

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

    def cut_stalled_heads(self, now: float) -> int:
        """Shut down every connection whose head is still being read after its deadline; how many.
        (An HTTP/2 connection's frames are gunicorn's own business: never cut here.)"""
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
        return len(late)
