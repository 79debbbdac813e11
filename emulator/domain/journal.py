"""The bounded request journal, kept in the shared store so every worker sees every entry."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from ..store.base import JOURNAL_SEQ, Store

SEQ_KEY = JOURNAL_SEQ
VALIDATE_ENDPOINTS = ("validate", "backup_validate")  # journal endpoint names of the two validates


def new_request_key() -> str:
    """Names a request while it runs; its journal number is only given when it is recorded."""
    return secrets.token_hex(8)


def token_fingerprint(token: str | None) -> str | None:
    """A stable short id for any token string, even a forged one (raw tokens are not logged)."""
    if not token:
        return None
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:16]


class Journal:
    def __init__(self, store: Store, capacity: int):
        self.store = store
        self.capacity = capacity

    def record(self, entry: dict[str, Any]) -> int:
        """Append an entry; returns the number the journal gave it (one store write)."""
        return self.store.journal_append(entry, capacity=self.capacity)


    def query(self, *, token: str | None = None, **filters) -> list[dict[str, Any]]:
        if token:
            filters["token_fp"] = token_fingerprint(token)
        return self.store.journal_query(**filters)
