"""The SQLite store's request journal: a ring of fixed-size slots in a file beside the database
(`<db>.requests`), mapped shared by every process on the host.

Appending an entry is one `pwrite` and two small stores into the shared mapping under the ring's
own lock, with no SQL and no transaction: a journal entry in a table cost a B-tree insert, an
index entry, a delete of the oldest row and the WAL pages of all three on every request, about
as much as the rest of the request. Every access holds the ring's lock (a thread lock and the
`flock` of the ring file: exclusive to write, shared to read; never the database's lock), so a
reader never sees a half-written slot. The pages are the file's, so entries outlive the process
that wrote them (a restart, or a SIGKILL, keeps every entry that was written).

Layout: a header (magic, version, slot size, capacity, latest id), then `capacity` slots. The
entry with id `n` lives in slot `(n - 1) % capacity` as (id, length, JSON). A slot is valid only
while its id is one the window (latest - capacity, latest] expects, so an overwritten, reset or
half-written slot is never read as an entry, and a full reset only sets latest to 0.

An entry's JSON is `[id, [keys], [values]]`, keys sorted with `id` among them: the keys of one
shape of entry are encoded once per process, not once per request (encoding the entry was the
largest single cost of the request path: about 89 000 instructions as an object, 43 000 so), and
the answer it reads back into is already in key order. Slots written as JSON objects by earlier
versions read as they always did.

What the file system can do to it is survived, never a crash of the worker:
- slot data is written with `pwrite`, so a full disk is an OSError (a store error), where a
  store into a sparse mapping would kill the process with SIGBUS;
- every access checks the file's size against its header before touching a slot, so a file
  truncated under the server, or left half laid out by a process killed during a capacity change
  (the header says capacity 0 for the length of it), is repaired (entries lost, ids kept), not
  read past its end;
- a damaged or foreign header is rewritten, keeping the latest id when it can be trusted.
"""

from __future__ import annotations

import fcntl
import json
import mmap
import os
import struct
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from operator import itemgetter
from typing import Any

from .base import JournalQuery, Record, dump

HEADER = struct.Struct("<4sIIQQ")  # magic, version, slot size, capacity, latest id
LATEST = struct.Struct("<Q")  # the header's last field
LATEST_AT = HEADER.size - LATEST.size
MAGIC, VERSION = b"CEJR", 1
SLOT_SIZE = 2048  # an entry is typically 500-900 bytes of JSON; a longer one is cut to fit
SLOT_HEAD = struct.Struct("<QI")  # the entry's id, its JSON's length
PAYLOAD = SLOT_SIZE - SLOT_HEAD.size
MAX_CAPACITY = 1_000_000  # also --journal-size's bound: a ring file of at most about 2 GB
MAX_ID = 2**62  # a header claiming more is damaged
# An entry that does not fit is tried again, in turn: every field's strings cut to 512 characters,
# to 128, then only the core fields' strings cut to 512, 128, 32, 8 (None: every field).
CUTS = ((None, 512), (None, 128), ("core", 512), ("core", 128), ("core", 32), ("core", 8))
CORE_FIELDS = ("request_key", "ts", "virtual_ts", "endpoint", "method", "path", "caller_ip", "app_key", "token_fp",
               "token_id", "token_kind", "action", "outcome", "code", "status", "fault", "worker_pid", "duration_ms")


# The id is only known under the lock: an entry is encoded with this number in the id's place,
# first in its array, and `_put` overwrites it with the real id, padded with spaces to the same
# width (valid JSON). Inside its array `id` is a key like the others, in its sorted place.
ID_MARK = 9_223_372_036_854_775_807
_MARK = b"[%d," % ID_MARK
SHAPES = 256  # entry shapes remembered per process (the request path makes a handful)


def encode_entry(entry: Record) -> bytes:
    """The entry as stored: compact ASCII JSON, `[id mark, [sorted keys], [values]]`, that fits one
    slot (outside the lock).

    Too long, its strings are cut (then only its core fields kept, then cut shorter) until the
    JSON fits: JSON is never cut, so a stored entry always parses."""
    data = _encode(entry)
    if len(data) <= PAYLOAD:
        return data
    for which, limit in CUTS:
        fields = CORE_FIELDS if which else tuple(entry)
        data = _encode({**_cut(entry, fields, limit), "truncated": True})
        if len(data) <= PAYLOAD:
            return data
    return _encode({"request_key": str(entry.get("request_key"))[:32], "truncated": True})


def _encode(entry: Record) -> bytes:
    keys, in_order = _shape(tuple(entry))
    return f"[{ID_MARK},{keys},{dump(in_order([*entry.values(), 0]))}]".encode("ascii")


@lru_cache(maxsize=SHAPES)
def _shape(keys: tuple[str, ...]) -> tuple[str, Callable[[list[Any]], tuple[Any, ...]]]:
    """One shape of entry: its stored key list (sorted, `id` among them: an entry's own `id` is
    replaced), and what puts its values, followed by the id's placeholder, in that order."""
    order = sorted({*keys, "id"})
    at = {key: n for n, key in enumerate(keys)}
    at["id"] = len(keys)
    picks = [at[key] for key in order]
    if len(picks) == 1:  # an empty entry: itemgetter of one index answers the item, not a tuple
        return dump(order), lambda values: (values[picks[0]],)
    return dump(order), itemgetter(*picks)


def _cut(entry: Record, fields: tuple[str, ...], limit: int) -> Record:
    out: Record = {}
    for k in fields:
        v = entry.get(k)
        if isinstance(v, str):
            out[k] = v[:limit] + "…" if len(v) > limit else v
        elif v is None or isinstance(v, (bool, int, float)):
            out[k] = v
    return out


def parse(raw: bytes) -> Record | None:
    """An id-tagged raw entry from `JournalRing.query` as a record (keys sorted, `id` among
    them, as the journal has always answered); None for a slot that does not parse."""
    number, _, body = raw.partition(b" ")
    entry = _load(body)
    if entry is None:
        return None
    if entry.get("id") != int(number):  # not stamped by _put (never expected): the slot's id holds
        entry["id"] = int(number)
        return dict(sorted(entry.items()))
    return entry


def _needle(value: Any) -> bytes:
    """The value as the stored JSON spells it: in an entry's JSON if the entry has it (necessary,
    not sufficient: another key, or a nested object, may hold the same text)."""
    return dump(value).encode("ascii")


def _header(capacity: int, latest: int) -> bytes:
    return HEADER.pack(MAGIC, VERSION, SLOT_SIZE, capacity, latest)


def _ours(head: tuple[Any, ...]) -> bool:
    """A header this version wrote, with a latest id no ring reaches (else it is damaged)."""
    return head[:3] == (MAGIC, VERSION, SLOT_SIZE) and head[4] <= MAX_ID


def _load(body: bytes) -> dict[str, Any] | None:
    """A slot's JSON as the entry it holds (`encode_entry`'s array, or an earlier version's object)."""
    try:
        stored = json.loads(body)
    except ValueError:
        return None
    if isinstance(stored, dict):
        return stored
    if not isinstance(stored, list) or len(stored) != 3:
        return None
    number, keys, values = stored
    if not isinstance(keys, list) or not isinstance(values, list) or len(keys) != len(values) \
            or not all(isinstance(key, str) for key in keys):
        return None
    entry = dict(zip(keys, values, strict=True))
    entry["id"] = number  # in its sorted place when the writer put it there (always, from encode_entry)
    return entry


def _unflock(fd: int | None) -> None:
    if fd is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class JournalRing:
    """The ring in one file (or, for an in-memory database, in this process's memory).

    Every other method must be called inside `locked()` (`shared=True` for the reading ones)."""

    def __init__(self, path: str | None) -> None:
        self._path = path
        self._fd: int | None = None
        self._map: mmap.mmap | None = None
        self._capacity = 0
        self._closer: weakref.finalize | None = None  # closes the descriptor once, at close() or collection
        self._thread_lock = threading.RLock()
        me = weakref.ref(self)

        def in_child() -> None:
            ring = me()
            if ring is not None:
                ring._after_fork()

        os.register_at_fork(after_in_child=in_child)

    def _after_fork(self) -> None:
        """In a forked child (one thread): its own descriptor, so its own flock; its own lock."""
        self._thread_lock = threading.RLock()
        self._drop()

    @contextmanager
    def locked(self, *, shared: bool = False) -> Iterator[None]:
        with self._thread_lock:
            fd = self._flock(fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            try:
                yield
            finally:
                _unflock(fd)

    def append_batch(self, entries: list[bytes], capacity: int) -> list[int]:
        """Store encoded entries (see `encode_entry`), in order, and return their ids: under one
        hold of the exclusive lock and one look at the file (the request path's call: a
        process's concurrent entries come as one batch). The ids are consecutive; the latest id
        moves once all are in, so an error half-way leaves none of them shown."""
        with self._thread_lock:
            fd = self._flock(fcntl.LOCK_EX)
            try:
                m = self._writable(min(capacity, MAX_CAPACITY))
                first = self._latest(m) + 1
                for n, data in enumerate(entries, first):
                    self._put(m, n, data)
                latest = first + len(entries) - 1
                LATEST.pack_into(m, LATEST_AT, latest)
                return list(range(first, latest + 1))
            finally:
                _unflock(fd)

    def _flock(self, how: int) -> int | None:
        """The ring file opened on first use and locked (`how`: LOCK_SH or LOCK_EX); None in memory."""
        if self._path is not None and self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self._closer = weakref.finalize(self, os.close, self._fd)  # also for a store never closed
        if self._fd is not None:
            fcntl.flock(self._fd, how)
        return self._fd

    def close(self) -> None:
        with self._thread_lock:
            self._drop()

    def _drop(self) -> None:
        if self._map is not None:
            self._map.close()
        if self._closer is not None:
            self._closer()  # runs os.close once; never again on a number the OS gave to another file
        self._map, self._fd, self._closer, self._capacity = None, None, None, 0

    # --- writing (exclusive lock) ----------------------------------------------------------
    def reset(self, app_key: str | None = None) -> None:
        """Forget every entry (ids start again at 1), or only those of one app."""
        m = self._writable()
        if app_key is None:
            LATEST.pack_into(m, LATEST_AT, 0)  # no slot is in an empty window
            return
        needle = _needle(app_key)
        for n, raw in self._entries(m):
            entry = _load(raw) if needle in raw else None
            if entry is not None and entry.get("app_key") == app_key:
                SLOT_HEAD.pack_into(m, self._offset(n), 0, 0)

    def adopt(self, rows: list[tuple[int, str]], latest: int, capacity: int) -> None:
        """Take the entries kept before the ring existed: (id, JSON with its id) pairs."""
        m = self._writable(min(max(capacity, 1), MAX_CAPACITY))
        for n, entry in rows[-self._capacity:]:
            loaded = _load(entry.encode())
            if loaded is not None:
                self._put(m, n, encode_entry({k: v for k, v in loaded.items() if k != "id"}))
        LATEST.pack_into(m, LATEST_AT, min(latest, MAX_ID))

    def fresh(self) -> bool:
        """Never written: no id was ever given out by this ring."""
        m = self._writable()
        return self._capacity == 0 and self._latest(m) == 0

    # --- reading (shared lock is enough) -------------------------------------------------------
    def latest(self) -> int:
        m = self._readable()
        return 0 if m is None else self._latest(m)

    def query(self, query: JournalQuery, want: int) -> tuple[list[bytes], bool]:
        """Up to `want` raw entries (id-tagged, oldest first) that may match `query`, copied out
        of the ring, and whether the scan stopped there; the caller parses and filters them after
        the lock is released (a filter's text found in the JSON is necessary, not sufficient)."""
        m = self._readable()
        if m is None:
            return [], False
        needles = [_needle(v) for _, v in query.filters()]
        picked: list[bytes] = []
        ids = self._ids(m)
        for n in (ids if query.after_id else reversed(ids)):
            if n <= query.after_id:
                continue
            raw = self._read(m, n)
            if raw is not None and all(needle in raw for needle in needles):
                picked.append(b"%d " % n + raw)
                if len(picked) >= want:
                    return (picked if query.after_id else picked[::-1]), True
        return (picked if query.after_id else picked[::-1]), False

    def count(self) -> int:
        m = self._readable()
        return 0 if m is None else sum(1 for _ in self._entries(m))

    def problem(self) -> str | None:
        """Why the ring file cannot be the one every worker shares, if it cannot (for health)."""
        if self._path is None:
            return None
        try:
            found = os.stat(self._path)
        except FileNotFoundError:
            return f"{self._path} was deleted under the running server" if self._fd is not None else None
        if self._fd is not None and os.fstat(self._fd).st_ino != found.st_ino:
            return f"{self._path} was replaced under the running server (restart it to use the new file)"
        if not os.access(self._path, os.W_OK):
            return f"{self._path} is read-only: the journal cannot be written"
        return None

    # --- the mapping -----------------------------------------------------------------------
    def _writable(self, capacity: int | None = None) -> mmap.mmap:
        """The mapping, its file repaired if it needs to be and laid out for `capacity` if given."""
        if self._fd is None:  # in memory: only this process ever lays it out
            if self._map is None:
                self._map = mmap.mmap(-1, HEADER.size)
                self._map[:HEADER.size] = _header(0, 0)
        else:
            head = self._check()
            if head is None:
                head = self._repair()
            self._map_file(head[3])
        assert self._map is not None
        if capacity is not None and capacity != self._capacity:
            self._relayout(capacity)
        return self._map

    def _readable(self) -> mmap.mmap | None:
        """The mapping as the file is now; None when it is empty or needs a repair (only a
        writer repairs: a reader holds the lock shared)."""
        if self._fd is None:
            return self._map
        head = self._check()
        if head is None:
            return None
        self._map_file(head[3])
        return self._map

    def _check(self) -> tuple[Any, ...] | None:
        """The header, if it is ours, sane, and the file is as long as it says. One `lseek` gives the
        length and the header is read in place from the mapping, whose first page exists while the
        file is that long (an `fstat`'s stat object and a copy of the header cost about 2 of an
        append's 7 us)."""
        assert self._fd is not None
        size = os.lseek(self._fd, 0, os.SEEK_END)
        if size < HEADER.size:
            return None
        head = HEADER.unpack_from(self._map) if self._map is not None else \
            HEADER.unpack(os.pread(self._fd, HEADER.size, 0))
        if not _ours(head) or head[3] > MAX_CAPACITY:
            return None
        return head if size >= HEADER.size + head[3] * SLOT_SIZE else None

    def _repair(self) -> tuple[Any, ...]:
        """An empty ring; the latest id is kept when the header is ours (ids never go back)."""
        assert self._fd is not None
        raw = os.pread(self._fd, HEADER.size, 0)
        found = HEADER.unpack(raw) if len(raw) == HEADER.size else None
        latest = found[4] if found is not None and _ours(found) else 0
        head = (MAGIC, VERSION, SLOT_SIZE, 0, latest)
        if self._map is not None:  # it may be longer than the file now: never touch it again
            self._map.close()
            self._map, self._capacity = None, 0
        os.pwrite(self._fd, _header(0, latest), 0)
        return head

    def _map_file(self, capacity: int) -> None:
        """Map the file as its header lays it out (again, if another process changed it)."""
        assert self._fd is not None
        if self._map is not None and capacity == self._capacity:
            return
        if self._map is not None:
            self._map.close()
        self._map = mmap.mmap(self._fd, HEADER.size + capacity * SLOT_SIZE)
        self._capacity = capacity

    def _relayout(self, capacity: int) -> None:
        """Size the ring for `capacity` slots, keeping the newest entries that fit. The header
        says capacity 0 while the file changes, so a process killed half-way leaves an empty,
        consistent ring."""
        assert self._map is not None
        kept = list(self._entries(self._map))[-capacity:]
        latest = self._latest(self._map)
        if self._fd is None:
            old, self._map = self._map, mmap.mmap(-1, HEADER.size + capacity * SLOT_SIZE)
            old.close()
        else:
            os.pwrite(self._fd, _header(0, latest), 0)
            self._map.close()
            self._map, self._capacity = None, 0
            os.ftruncate(self._fd, HEADER.size)  # drop the old slots, then grow (sparse, zeroed)
            os.ftruncate(self._fd, HEADER.size + capacity * SLOT_SIZE)
            self._map = mmap.mmap(self._fd, HEADER.size + capacity * SLOT_SIZE)
        self._capacity = capacity
        for n, raw in kept:
            self._put(self._map, n, raw)
        self._map[:HEADER.size] = _header(capacity, latest)

    # --- slots -----------------------------------------------------------------------------
    def _offset(self, n: int) -> int:
        return HEADER.size + ((n - 1) % self._capacity) * SLOT_SIZE

    def _put(self, m: mmap.mmap, n: int, data: bytes) -> None:
        """The JSON under an id no window expects, then the id that makes it valid (a writer
        killed half-way leaves nothing readable). The JSON goes through `pwrite`: on a full disk
        that is an OSError, where a store into a page without a block would be SIGBUS."""
        at = self._offset(n)
        data = data.replace(_MARK, b"[%-19d," % n, 1)  # the same length: ids stay below 2**62
        if self._fd is not None:
            os.pwrite(self._fd, SLOT_HEAD.pack(0, len(data)) + data, at)
        else:
            m[at:at + SLOT_HEAD.size + len(data)] = SLOT_HEAD.pack(0, len(data)) + data
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
        return int(LATEST.unpack_from(m, LATEST_AT)[0])
