"""The SQLite store's request journal: a ring of fixed-size slots in a file beside the database
(`<db>.requests`), mapped shared by every process on the host.

Appending an entry is a copy into shared memory under the ring's own lock, with no SQL and no
transaction: a journal entry in a table cost a B-tree insert, an index entry, a delete of the
oldest row and the WAL pages of all three on every request, about as much as the rest of the
request. Every access, reads included, holds the ring's lock (a thread lock and the `flock` of
the ring file, never waiting for a database write), so a reader never sees a half-written slot
and needs no memory-ordering tricks.
The pages are the file's, so entries outlive the process that wrote them (a restart, or a
SIGKILL, keeps every entry that was written) like the rest of the store.

Layout: a header (magic, version, slot size, capacity, latest id), then `capacity` slots. The
entry with id `n` lives in slot `(n - 1) % capacity` as (id, length, JSON). A slot is valid only
while its id is one the window (latest - capacity, latest] expects, so an overwritten, reset or
half-written slot is never read as an entry. A capacity change lays the ring out again, keeping
the newest entries; other processes see the new capacity in the header and map the file again.
"""

from __future__ import annotations

import fcntl
import json
import mmap
import os
import struct
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from .base import JournalQuery, Record, dump

HEADER = struct.Struct("<4sIIQQ")  # magic, version, slot size, capacity, latest id
MAGIC, VERSION = b"CEJR", 1
SLOT_SIZE = 2048  # an entry is typically 500-900 bytes of JSON; a longer one is cut to fit
SLOT_HEAD = struct.Struct("<QI")  # the entry's id, its JSON's length
PAYLOAD = SLOT_SIZE - SLOT_HEAD.size
LONG_TEXT = 512  # an entry that does not fit has its strings cut to this many characters
CORE_FIELDS = ("request_key", "ts", "virtual_ts", "endpoint", "method", "path", "caller_ip", "app_key", "token_fp",
               "token_id", "token_kind", "action", "outcome", "code", "status", "fault", "worker_pid", "duration_ms")


def encode_entry(entry: Record) -> bytes:
    """The entry as stored: compact, key-sorted ASCII JSON that fits one slot. Outside the lock."""
    data = dump(entry).encode("ascii")
    if len(data) <= PAYLOAD:
        return data
    cut = {k: (v[:LONG_TEXT] + "…" if isinstance(v, str) and len(v) > LONG_TEXT else v) for k, v in entry.items()}
    data = dump({**cut, "truncated": True}).encode("ascii")
    if len(data) <= PAYLOAD:
        return data
    core = {k: cut.get(k) for k in CORE_FIELDS}  # each of these is short by construction
    return dump({**core, "reason": "entry too large for the journal: cut to its core fields",
                 "truncated": True}).encode("ascii")[:PAYLOAD]


class JournalRing:
    """The ring in one file (or, for an in-memory database, in this process's memory).

    Every other method must be called inside `locked()`."""

    def __init__(self, path: str | None) -> None:
        self._path = path
        self._file: IO[bytes] | None = None
        self._map: mmap.mmap | None = None
        self._capacity = 0
        self._pid = -1
        self._thread_lock = threading.RLock()

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One process's thread at a time, and across processes the ring file's flock (opened
        again after a fork: an inherited descriptor shares the parent's lock)."""
        if self._pid != os.getpid():
            self.close()
            self._thread_lock, self._pid = threading.RLock(), os.getpid()
        with self._thread_lock:
            if self._path is not None and self._file is None:
                self._file = open(self._path, "a+b")  # noqa: SIM115  (kept until close)
                weakref.finalize(self, self._file.close)  # a store dropped without close() lets it go too
            fd = self._file.fileno() if self._file is not None else None
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)

    # --- writing -------------------------------------------------------------------------
    def append(self, data: bytes, capacity: int) -> int:
        """Store one encoded entry (see `encode_entry`) and return its id."""
        m = self._mapped(capacity)
        assert m is not None
        latest = self._latest(m) + 1
        self._put(m, latest, data)
        self._set_latest(m, latest)
        return latest

    def reset(self, app_key: str | None = None) -> None:
        """Forget every entry (ids start again at 1), or only those of one app."""
        m = self._mapped()
        if m is None:
            return
        if app_key is None:
            m[HEADER.size:] = bytes(len(m) - HEADER.size)
            self._set_latest(m, 0)
            return
        for n, raw in self._entries(m):
            if json.loads(raw).get("app_key") == app_key:
                SLOT_HEAD.pack_into(m, self._offset(n), 0, 0)

    def adopt(self, rows: list[tuple[int, str]], latest: int, capacity: int) -> None:
        """Take the entries kept before the ring existed: (id, JSON with its id) pairs."""
        m = self._mapped(capacity)
        assert m is not None
        for n, entry in rows[-capacity:]:
            self._put(m, n, encode_entry({k: v for k, v in json.loads(entry).items() if k != "id"}))
        self._set_latest(m, latest)

    # --- reading -------------------------------------------------------------------------
    def latest(self) -> int:
        m = self._mapped()
        return 0 if m is None else self._latest(m)

    def fresh(self) -> bool:
        """Never laid out: no entry was ever written to this ring."""
        m = self._mapped()
        return m is None or HEADER.unpack_from(m)[3] == 0

    def query(self, query: JournalQuery, want: int) -> tuple[list[bytes], bool]:
        """Up to `want` raw entries (id-tagged, oldest first) that may match `query`, copied out
        of the ring, and whether the scan stopped there; the caller parses and filters them after
        the lock is released (a filter's text found in the JSON is necessary, not sufficient)."""
        m = self._mapped()
        if m is None:
            return [], False
        needles = [b'"%s":%s' % (k.encode(), dump(v).encode("ascii")) for k, v in query.filters()]
        picked: list[bytes] = []
        ids = self._ids(m)
        for n in (ids if query.after_id else reversed(ids)):
            if n <= query.after_id:
                continue
            raw = self._read(m, n)
            if raw is not None and all(needle in raw for needle in needles):
                picked.append(b"%d " % n + raw)
                if len(picked) >= want:
                    break
        else:
            return (picked if query.after_id else picked[::-1]), False
        return (picked if query.after_id else picked[::-1]), True

    def count(self) -> int:
        m = self._mapped()
        return 0 if m is None else sum(1 for _ in self._entries(m))

    def size(self) -> int:
        return len(self._map) if self._map is not None else 0

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
        if self._file is not None:
            self._file.close()
        self._map, self._file, self._capacity, self._pid = None, None, 0, -1

    # --- the mapping -----------------------------------------------------------------------
    def _mapped(self, capacity: int | None = None) -> mmap.mmap | None:
        """The current mapping, laid out for `capacity` when given (None: as found; None if the
        ring was never written)."""
        if self._map is None and not self._open(create=capacity is not None):
            return None
        assert self._map is not None
        found = HEADER.unpack_from(self._map)[3]
        if found != self._capacity:  # another process laid it out again: map the new size
            self._remap()
        if capacity is not None and capacity != self._capacity:
            self._relayout(capacity)
        return self._map

    def _open(self, *, create: bool) -> bool:
        if self._file is None:
            if not create:
                return False
            self._map = mmap.mmap(-1, HEADER.size)
            HEADER.pack_into(self._map, 0, MAGIC, VERSION, SLOT_SIZE, 0, 0)
            self._capacity = 0
            return True
        if os.fstat(self._file.fileno()).st_size < HEADER.size or not self._valid_header():
            os.ftruncate(self._file.fileno(), HEADER.size)
            os.pwrite(self._file.fileno(), HEADER.pack(MAGIC, VERSION, SLOT_SIZE, 0, 0), 0)
        self._remap()
        return True

    def _valid_header(self) -> bool:
        assert self._file is not None
        head = os.pread(self._file.fileno(), HEADER.size, 0)
        if len(head) < HEADER.size:
            return False
        magic, version, slot, capacity, _ = HEADER.unpack(head)
        size = os.fstat(self._file.fileno()).st_size
        return (magic, version, slot) == (MAGIC, VERSION, SLOT_SIZE) and size >= HEADER.size + capacity * SLOT_SIZE

    def _remap(self) -> None:
        if self._file is None:  # in memory: only this process lays it out
            return
        if self._map is not None:
            self._map.close()
        fd = self._file.fileno()
        capacity = HEADER.unpack(os.pread(fd, HEADER.size, 0))[3]
        self._map = mmap.mmap(fd, HEADER.size + capacity * SLOT_SIZE)
        self._capacity = capacity

    def _relayout(self, capacity: int) -> None:
        """Size the ring for `capacity` slots, keeping the newest entries that fit."""
        assert self._map is not None
        kept = list(self._entries(self._map))[-capacity:]
        latest = self._latest(self._map)
        size = HEADER.size + capacity * SLOT_SIZE
        if self._file is not None:
            self._map.close()
            os.ftruncate(self._file.fileno(), HEADER.size)  # drop the old slots, then grow zeroed
            os.ftruncate(self._file.fileno(), size)
            self._map = mmap.mmap(self._file.fileno(), size)
        else:
            old, self._map = self._map, mmap.mmap(-1, size)
            old.close()
        HEADER.pack_into(self._map, 0, MAGIC, VERSION, SLOT_SIZE, capacity, latest)
        self._capacity = capacity
        for n, raw in kept:
            self._put(self._map, n, raw)

    # --- slots -----------------------------------------------------------------------------
    def _offset(self, n: int) -> int:
        return HEADER.size + ((n - 1) % self._capacity) * SLOT_SIZE

    def _put(self, m: mmap.mmap, n: int, data: bytes) -> None:
        """Invalidate the slot, write the JSON, then the id that makes it valid (a writer killed
        half-way leaves a slot no window expects)."""
        at = self._offset(n)
        SLOT_HEAD.pack_into(m, at, 0, 0)
        m[at + SLOT_HEAD.size:at + SLOT_HEAD.size + len(data)] = data
        SLOT_HEAD.pack_into(m, at, n, len(data))

    def _read(self, m: mmap.mmap, n: int) -> bytes | None:
        at = self._offset(n)
        found, length = SLOT_HEAD.unpack_from(m, at)
        if found != n or not 0 < length <= PAYLOAD:
            return None
        return m[at + SLOT_HEAD.size:at + SLOT_HEAD.size + length]

    def _ids(self, m: mmap.mmap) -> range:
        latest = self._latest(m)
        return range(max(1, latest - self._capacity + 1), latest + 1) if self._capacity else range(0)

    def _entries(self, m: mmap.mmap) -> Iterator[tuple[int, bytes]]:
        for n in self._ids(m):
            raw = self._read(m, n)
            if raw is not None:
                yield n, raw

    @staticmethod
    def _latest(m: mmap.mmap) -> int:
        return int(HEADER.unpack_from(m)[4])

    @staticmethod
    def _set_latest(m: mmap.mmap, latest: int) -> None:
        struct.pack_into("<Q", m, HEADER.size - 8, latest)


def parse(raw: bytes) -> Record | None:
    """An id-tagged raw entry from `JournalRing.query` as a record (keys sorted, `id` among
    them, as the journal has always answered); None for a slot that does not parse."""
    number, _, body = raw.partition(b" ")
    try:
        entry: Any = json.loads(body)
    except ValueError:
        return None
    if not isinstance(entry, dict):
        return None
    entry["id"] = int(number)
    return dict(sorted(entry.items()))
