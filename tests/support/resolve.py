"""Point host names at local ports for `requests`, keeping the name for SNI, the Host header and
certificate verification (Python's side of Chromium's --host-resolver-rules)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import urllib3.util.connection


@contextlib.contextmanager
def resolve_to(mapping: dict[tuple[str, int], tuple[str, int]]) -> Iterator[None]:
    """While active, connections to (host, port) in `mapping` go to the mapped address instead."""
    real = urllib3.util.connection.create_connection

    def create_connection(address, *args, **kwargs):
        return real(mapping.get(tuple(address), address), *args, **kwargs)

    urllib3.util.connection.create_connection = create_connection
    try:
        yield
    finally:
        urllib3.util.connection.create_connection = real
