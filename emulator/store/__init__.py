"""Pick a Store by URL: memory://, sqlite:///relative.db, sqlite:////abs.db, redis://host:port/db."""

from __future__ import annotations

from urllib.parse import urlparse

from ..errors import ConfigError
from .base import Store


def open_store(url: str) -> Store:
    scheme = urlparse(url).scheme
    if scheme == "memory":
        from .memory import MemoryStore

        return MemoryStore(url)
    if scheme == "sqlite":
        from .sqlite import SQLiteStore

        path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else ""
        if not path:
            raise ConfigError(f"--store {url}: expected sqlite:///relative.db or sqlite:////absolute/path.db")
        return SQLiteStore(url, path)
    if scheme in ("redis", "rediss"):
        try:
            from .redis import RedisStore
        except ImportError as exc:
            raise ConfigError(f"--store {url}: the redis store needs "
                              f"`pip install 'captchala-emulator[redis]'` ({exc})") from None
        return RedisStore(url)
    raise ConfigError(f"--store {url}: unknown store scheme {scheme!r} "
                      "(use memory://, sqlite:///path or redis://host:port/db)")


__all__ = ["Store", "open_store"]
