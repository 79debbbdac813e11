"""The Redis store's hot path: one pipeline (one round trip) per wave of concurrent requests.

A validate reads the shared state, consumes its token and appends its journal entry. Sent one
command at a time, a loaded worker spent its time in round trips and in redis-py's per-command
layers. Here the concurrent calls of one process (see group.py) go out as one packed write on a
connection of this process's own and are answered from one read:

- reads (MGET) of the same keys are sent once and shared by every caller that asked;
- each consume stays its own EVALSHA, so it is atomic on its own, as before;
- journal entries share one EVALSHA per chunk, numbered in one HINCRBY, in queue order.

A journal entry is in Redis before its call returns. Any Redis failure fails every call of the
pipeline with StoreUnavailable; a connection found broken is reopened and the pipeline re-sent
once (consumes carry a nonce, so a re-sent one still knows it won)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.exceptions import NoScriptError, ResponseError

from ..errors import StoreUnavailable
from .group import Slot

APPEND_CHUNK = 500  # entries per journal script call (keeps Lua's unpack() far from its limit)

# KEYS: ids zset, entries hash, counters hash. ARGV: seq field, capacity, entry json ...
# Numbers the entries last-n+1 .. last in one step, keeps the newest `capacity` ids, returns last.
JOURNAL_APPEND = """
local n = #ARGV - 2
local last = redis.call('HINCRBY', KEYS[3], ARGV[1], n)
local fields, scores = {}, {}
for i = 1, n do
  local id = last - n + i
  fields[2 * i - 1] = id
  fields[2 * i] = ARGV[i + 2]
  scores[2 * i - 1] = id
  scores[2 * i] = id
end
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('ZADD', KEYS[1], unpack(scores))
local cut = last - tonumber(ARGV[2])
while true do
  local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cut, 'LIMIT', 0, 500)
  if #old == 0 then return last end
  redis.call('ZREM', KEYS[1], unpack(old))
  redis.call('HDEL', KEYS[2], unpack(old))
end
"""


@dataclass(frozen=True)
class Lua:
    """A script sent by SHA (loaded again when Redis answers NOSCRIPT, e.g. after a restart)."""

    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())


JOURNAL = Lua(JOURNAL_APPEND)


@dataclass(frozen=True)
class Read:
    """MGET of `keys`: the answer is their values in order."""

    keys: tuple[str, ...]


@dataclass(frozen=True)
class Script:
    """One script call of its own: the answer is the script's reply."""

    lua: Lua
    keys: tuple[str, ...]
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Append:
    """A journal entry (JSON): the answer is its id. `keys`: ids zset, entries hash, counters hash."""

    keys: tuple[str, str, str]
    seq_field: str
    entry: str
    capacity: int


Command = tuple[Any, ...]
Deliver = Callable[[list[Any]], None]  # hands a pipeline's replies to the slots of one command


class Pipeline:
    """Sends a batch of slots as one pipeline on one connection (one batch at a time: see Group)."""

    def __init__(self, connect: Callable[[], redis.Connection], where: str) -> None:
        self._connect = connect
        self._where = where  # "redis <url without password>", the start of every error
        self._conn: redis.Connection | None = None

    def flush(self, batch: list[Slot]) -> None:
        commands, deliveries, scripts = _plan(batch)
        try:
            replies = self._send(commands, scripts)
        except redis.RedisError as exc:
            error = self._unavailable(exc)
            for slot in batch:
                slot.error = error
            return
        for deliver in deliveries:
            deliver(replies)
        for slot in batch:
            if isinstance(slot.result, ResponseError):
                slot.result, slot.error = None, self._unavailable(slot.result)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.disconnect()

    def _unavailable(self, exc: Exception) -> StoreUnavailable:
        return StoreUnavailable(f"{self._where}: {type(exc).__name__}: {exc}")

    def _send(self, commands: list[Command], scripts: dict[str, str]) -> list[Any]:
        """Every command's reply (a ResponseError for a failed one). A script Redis does not know
        (NOSCRIPT: it restarted, or SCRIPT FLUSH) is loaded and its calls re-sent, in one trip."""
        try:
            replies = self._round_trip(commands)
        except redis.ConnectionError:  # e.g. Redis restarted under a kept connection: reconnect once
            replies = self._round_trip(commands)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            shas = {commands[i][1] for i in missing}
            loads: list[Command] = [("SCRIPT", "LOAD", scripts[sha]) for sha in shas]
            again = self._round_trip(loads + [commands[i] for i in missing])[len(loads):]
            for i, reply in zip(missing, again, strict=True):
                replies[i] = reply
        return replies

    def _round_trip(self, commands: list[Command]) -> list[Any]:
        conn = self._conn or self._open()
        try:
            conn.send_packed_command([_pack(commands)])  # one buffer: one send, not one per 6 kB
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(conn.read_response())
                except ResponseError as error:  # this command failed; its reply was read whole
                    replies.append(error)
            return replies
        except BaseException:
            conn.disconnect()  # never reuse a connection with replies left unread
            raise

    def _open(self) -> redis.Connection:
        self._conn = self._connect()
        return self._conn


def _pack(commands: list[Command]) -> bytes:
    """RESP for our own commands (str, int and bytes arguments only): leaner than redis-py's
    general packer, which checked and encoded each argument in several calls."""
    out: list[bytes] = []
    for command in commands:
        out.append(b"*%d\r\n" % len(command))
        for arg in command:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _plan(batch: list[Slot]) -> tuple[list[Command], list[Deliver], dict[str, str]]:
    """The pipeline's commands, per command how its reply reaches its slots, and the sources
    of the scripts it calls by SHA."""
    commands: list[Command] = []
    deliveries: list[Deliver] = []
    scripts: dict[str, str] = {}
    reads: dict[tuple[str, ...], list[Slot]] = {}
    appends: dict[tuple[tuple[str, str, str], str], list[Slot]] = {}
    for slot in batch:
        op = slot.op
        if isinstance(op, Read):
            reads.setdefault(op.keys, []).append(slot)
        elif isinstance(op, Append):
            appends.setdefault((op.keys, op.seq_field), []).append(slot)
        else:
            scripts[op.lua.sha] = op.lua.source
            deliveries.append(_one(len(commands), [slot]))
            commands.append(("EVALSHA", op.lua.sha, len(op.keys), *op.keys, *op.args))
    for keys, slots in reads.items():
        deliveries.append(_one(len(commands), slots))
        commands.append(("MGET", *keys))
    if appends:
        scripts[JOURNAL.sha] = JOURNAL.source
    for (keys, seq_field), slots in appends.items():
        for start in range(0, len(slots), APPEND_CHUNK):
            chunk = slots[start:start + APPEND_CHUNK]
            capacity = min(slot.op.capacity for slot in chunk)
            deliveries.append(_numbered(len(commands), chunk))
            commands.append(("EVALSHA", JOURNAL.sha, 3, *keys, seq_field, capacity, *(s.op.entry for s in chunk)))
    return commands, deliveries, scripts


def _one(index: int, slots: list[Slot]) -> Deliver:
    def deliver(replies: list[Any]) -> None:
        for slot in slots:
            slot.result = replies[index]

    return deliver


def _numbered(index: int, slots: list[Slot]) -> Deliver:
    def deliver(replies: list[Any]) -> None:
        last = replies[index]
        for offset, slot in enumerate(slots):
            slot.result = last if isinstance(last, ResponseError) else int(last) - len(slots) + 1 + offset

    return deliver
