"""The bounded request journal, kept in the shared store so every worker sees every entry."""

from __future__ import annotations

import hashlib
from typing import Any

from .store.base import Store

SEQ_KEY = "journal_seq"


def token_fingerprint(token: str | None) -> str | None:
    """A stable short id for any token string, even a forged one (raw tokens are not logged)."""
    if not token:
        return None
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:16]


class Journal:
    def __init__(self, store: Store, capacity: int):
        self.store = store
        self.capacity = capacity

    def next_id(self) -> int:
        """Reserve the id of a request before it runs, so a consume record can name it."""
        return self.store.incr(SEQ_KEY)

    def record(self, entry: dict[str, Any]) -> None:
        self.store.journal_append(entry, capacity=self.capacity)

    def query(self, *, token: str | None = None, **filters) -> list[dict[str, Any]]:
        if token:
            filters["token_fp"] = token_fingerprint(token)
        return self.store.journal_query(**filters)
