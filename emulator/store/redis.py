"""redis://host:port/db — the store for several replicas on several hosts.

Every invariant is one Redis command or one Lua script (scripts run atomically), so no
read-then-write race exists between processes. Expiry follows the other backends: rows
carry `expires_at` in an index sorted set and `purge(now)` drops them (Redis' own TTLs
would use real time, and the virtual clock may be behind it). Connections are opened
lazily and reopened after fork; every Redis failure becomes StoreUnavailable."""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .. import process
from ..errors import ConfigError, StoreUnavailable
from ..logs import redact_url
from .base import HORIZON_KEY, JOURNAL_SEQ, NO_HORIZON, Expired, JournalQuery, Record, Store, dump, load
from .group import Group
from .redis_batch import Append, Lua, Pipeline, Read, Script

T = TypeVar("T")

DEFAULT_PREFIX = "captchala-emulator"
CONNECT_TIMEOUT_S = 1.0
SOCKET_TIMEOUT_S = 2.0
CHUNK = 500
SINGLE_USE = ("consumed", "uses")  # families guarded by the purge horizon
GENERATION_KEY = "store_generation"  # made once by the first emulator on this data; see _generation
DATA_LOST = ("the emulator's data in Redis is gone (flushed, or Redis restarted without persistence): which tokens "
             "were used is unknown, so none is accepted; restart the emulator (every replica) to start over on the "
             "new data")
FAMILIES = (*SINGLE_USE, "counters")

# GET, or SET when absent, in one step (works on Redis 6 too, unlike SET NX GET).
SET_IF_ABSENT = """
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""

# KEYS: counters hash, owner hash, scope set, expiry zset, scopes registry
# ARGV: key, amount, scope, expires_at ('' = keep)
INCR = """
local v = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[3]) == 1 then
  redis.call('SADD', KEYS[3], ARGV[1])
  redis.call('SADD', KEYS[5], ARGV[3])
end
if ARGV[4] ~= '' then redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1]) end
return v
"""

# KEYS: consumed hash, owner hash, scope set, expiry zset, scopes registry, horizon, generation
# ARGV: token id, stored value, scope, expires_at, the generation this store knows, the error
# when the generation is not that one (the data was lost). Returns nil when this call consumed it,
# {horizon} when expires_at is at or before the purge horizon, else the earlier stored value.
CONSUME = """
if redis.call('GET', KEYS[7]) ~= ARGV[5] then return redis.error_reply(ARGV[6]) end
local earlier = redis.call('HGET', KEYS[1], ARGV[1])
if earlier then return earlier end
local h = redis.call('GET', KEYS[6])
if h and tonumber(ARGV[4]) <= tonumber(h) then return {h} end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
  redis.call('SADD', KEYS[3], ARGV[1])
  redis.call('SADD', KEYS[5], ARGV[3])
  redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
  return false
end
return redis.call('HGET', KEYS[1], ARGV[1])
"""
CONSUME_LUA = Lua(CONSUME)

# KEYS: uses hash, owner hash, scope set, expiry zset, scopes registry, horizon, generation
# ARGV: key, scope, expires_at, generation, error (as CONSUME). Returns the uses so far, or
# {horizon} (nothing counted).
USE = """
if redis.call('GET', KEYS[7]) ~= ARGV[4] then return redis.error_reply(ARGV[5]) end
local h = redis.call('GET', KEYS[6])
if h and tonumber(ARGV[3]) <= tonumber(h) then return {h} end
local v = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 1 then
  redis.call('SADD', KEYS[3], ARGV[1])
  redis.call('SADD', KEYS[5], ARGV[2])
end
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
return v
"""

# Drop rows of one family whose expiry is before ARGV[1]; ARGV[2] is the scope-set prefix.
# KEYS: values hash, owner hash, expiry zset, horizon ('' = the family raises no horizon).
# A single-use family first raises the horizon to the latest expiry it drops.
PURGE = """
local n = 0
local top = nil
while true do
  local ids = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[1], 'WITHSCORES', 'LIMIT', 0, 500)
  if #ids == 0 then break end
  local names = {}
  for i = 1, #ids, 2 do
    local id = ids[i]
    names[#names + 1] = id
    local score = tonumber(ids[i + 1])
    if top == nil or score > top then top = score end
    local scope = redis.call('HGET', KEYS[2], id)
    if scope then redis.call('SREM', ARGV[2] .. scope, id) end
  end
  if KEYS[4] ~= '' and top ~= nil then
    local h = redis.call('GET', KEYS[4])
    if not h or top > tonumber(h) then redis.call('SET', KEYS[4], string.format('%.17g', top)) end
  end
  redis.call('HDEL', KEYS[1], unpack(names))
  redis.call('HDEL', KEYS[2], unpack(names))
  redis.call('ZREM', KEYS[3], unpack(names))
  n = n + #names
end
return n
"""

# Scoped reset of one family. KEYS: values hash, owner hash, expiry zset, scope set
RESET_FAMILY_SCOPE = """
local ids = redis.call('SMEMBERS', KEYS[4])
for i = 1, #ids, 500 do
  local part = {unpack(ids, i, math.min(i + 499, #ids))}
  redis.call('HDEL', KEYS[1], unpack(part))
  redis.call('HDEL', KEYS[2], unpack(part))
  redis.call('ZREM', KEYS[3], unpack(part))
end
redis.call('DEL', KEYS[4])
return #ids
"""

# Scoped reset of the journal. KEYS: ids zset, entries hash. ARGV: app key.
RESET_JOURNAL_SCOPE = """
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do
  local ok, entry = pcall(cjson.decode, all[i + 1])
  if ok and type(entry) == 'table' and entry['app_key'] == ARGV[1] then
    redis.call('HDEL', KEYS[2], all[i])
    redis.call('ZREM', KEYS[1], all[i])
  end
end
return 0
"""


class RedisStore(Store):
    """The Store ABC on one Redis database; all keys live under one prefix (`?prefix=` in the URL)."""

    def __init__(self, url: str) -> None:
        self._redis_url, self.prefix = _split_prefix(url)
        self.url = _redacted(url)
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._client: redis.Redis | None = None
        self._scripts: dict[str, Any] = {}
        self._pipeline: Pipeline | None = None
        self._group: Group | None = None
        self._nonce_prefix = secrets.token_hex(6)
        self._nonce_seq = 0
        self._known: str | None = None  # the data's generation, read once per store (forks inherit it)

    # --- connections ---------------------------------------------------------------
    def _redis(self) -> redis.Redis:
        """The client of this process: created on first use, recreated after fork."""
        pid = process.pid()
        if self._client is None or self._pid != pid:
            with self._lock:
                if self._client is None or self._pid != pid:
                    self._client = self._connect()
                    self._scripts = {}
                    self._pipeline = Pipeline(self._own_connection, f"redis {self.url}")
                    self._group = Group(self._pipeline.flush)
                    self._pid = pid
            if self._known is None:  # the first contact (in serve: the master's, before it forks)
                self._generation()
        return self._client

    def _generation(self) -> str:
        """The generation of the data this emulator started on: a random marker the first emulator
        on an empty database writes, every later one reads. Read once per store object, in the
        serve master before it forks, so every worker and every worker restarted later holds the
        same one. Redis that lost its data (FLUSHALL, a restart without persistence) no longer
        has it: which tokens were used is unknown then, so nothing single-use is accepted and
        health fails until the emulator restarts on the new data."""
        if self._known is None:
            self._known = str(self._run("set_if_absent", SET_IF_ABSENT, [self._k("kv", GENERATION_KEY)],
                                        [secrets.token_hex(8)]))
        return self._known

    def _same_data(self, generation: str, found: object) -> None:
        """StoreUnavailable unless the database still holds the generation this store started on."""
        if found != generation:
            raise StoreUnavailable(f"redis {self.url}: {DATA_LOST}")

    def _batched(self, op: Read | Script | Append) -> Any:
        """The hot path (get, consume, journal): this process's concurrent calls share one
        pipeline (see redis_batch.py); the answer is this op's own reply."""
        self._redis()  # (re)creates the group after fork
        assert self._group is not None
        return self._group.submit(op)

    def _own_connection(self) -> redis.Connection:
        """A connection outside the pool, for the pipeline only (it sends one batch at a time)."""
        pool = self._redis().connection_pool
        return cast(redis.Connection, pool.connection_class(**pool.connection_kwargs))

    def _connect(self) -> redis.Redis:
        try:
            return redis.Redis.from_url(
                self._redis_url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=SOCKET_TIMEOUT_S,
                # one immediate retry on a broken pooled connection (e.g. after Redis restarted);
                # never on a timeout, so a hung Redis costs one socket timeout, not several
                retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)), retry_on_timeout=False,
                decode_responses=True,
                health_check_interval=10)
        except (ValueError, redis.RedisError) as exc:
            raise StoreUnavailable(f"redis {self.url}: {exc}") from exc

    def _call(self, fn: Callable[[redis.Redis], T]) -> T:
        try:
            return fn(self._redis())
        except redis.RedisError as exc:
            raise StoreUnavailable(f"redis {self.url}: {type(exc).__name__}: {exc}") from exc

    def _script(self, name: str, source: str) -> Any:
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self._redis().register_script(source)
        return script

    def _run(self, name: str, source: str, keys: list[str], args: list[Any]) -> Any:
        return self._call(lambda r: self._script(name, source)(keys=keys, args=args, client=r))

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # --- key/value -----------------------------------------------------------------
    def get(self, key: str) -> str | None:
        return cast("str | None", self._batched(Read((self._k("kv", key),)))[0])

    def get_many(self, keys: tuple[str, ...]) -> dict[str, str | None]:
        """The hot path's one read (clock offset, profile version) also reads the generation."""
        generation = self._generation()
        values = self._batched(Read((*(self._k("kv", key) for key in keys), self._k("kv", GENERATION_KEY))))
        self._same_data(generation, values[-1])
        return dict(zip(keys, values[:-1], strict=True))

    def set(self, key: str, value: str) -> None:
        self._call(lambda r: r.set(self._k("kv", key), value))

    def set_many(self, values: dict[str, str | None]) -> None:
        """MULTI/EXEC: the writes apply together, no reader sees half of them."""
        def write(r: redis.Redis) -> None:
            pipe = r.pipeline(transaction=True)
            for key, value in values.items():
                if value is None:
                    pipe.delete(self._k("kv", key))
                else:
                    pipe.set(self._k("kv", key), value)
            pipe.execute()

        self._call(write)

    def set_if_absent(self, key: str, value: str) -> str:
        return str(self._run("set_if_absent", SET_IF_ABSENT, [self._k("kv", key)], [value]))

    def delete(self, key: str) -> None:
        self._call(lambda r: r.delete(self._k("kv", key)))

    def incr_float(self, key: str, amount: float) -> float:
        return float(self._call(lambda r: r.incrbyfloat(self._k("kv", key), float(amount))))

    # --- counters ------------------------------------------------------------------
    def _family(self, family: str, scope: str) -> list[str]:
        return [self._k(family), self._k(family, "owner"), self._k(family, "scope", scope), self._k(family, "expiry"),
                self._k("scopes")]

    def incr(self, key: str, amount: int = 1, *, scope: str = "", expires_at: float | None = None) -> int:
        args = [key, int(amount), scope, "" if expires_at is None else repr(float(expires_at))]
        return int(self._run("incr", INCR, self._family("counters", scope), args))

    def counter(self, key: str) -> int:
        raw = self._call(lambda r: r.hget(self._k("counters"), key))
        return int(raw) if raw is not None else 0

    # --- single use ----------------------------------------------------------------
    def consume(self, token_id: str, *, scope: str, expires_at: float, record: Record) -> Record | Expired | None:
        # The nonce makes the script safe to retry: if a lost reply hid our own success,
        # the stored value still carries our nonce and we know the win was ours.
        nonce = self._nonce()
        keys = (*self._family("consumed", scope), self._k("kv", HORIZON_KEY), self._k("kv", GENERATION_KEY))
        stored = self._batched(Script(CONSUME_LUA, keys, (token_id, dump({"n": nonce, "r": record}), scope,
                                                          repr(float(expires_at)), self._generation(), DATA_LOST)))
        if stored is None:
            return None
        if isinstance(stored, list):
            return Expired(float(stored[0]))
        value = load(stored)
        return None if value.get("n") == nonce else dict(value.get("r") or {})

    def consumed(self, token_id: str, *, expires_at: float | None = None) -> Record | Expired | None:
        def read(r: redis.Redis) -> list[Any]:
            pipe = r.pipeline(transaction=True)  # one snapshot of the row and the horizon
            pipe.hget(self._k("consumed"), token_id)
            pipe.get(self._k("kv", HORIZON_KEY))
            return pipe.execute()

        stored, horizon = self._call(read)
        if stored is not None:
            return dict(load(stored).get("r") or {})
        if horizon is None or expires_at is None or expires_at > float(horizon):
            return None
        return Expired(float(horizon))

    def use(self, key: str, *, scope: str, expires_at: float) -> int | Expired:
        result = self._run("use", USE, [*self._family("uses", scope), self._k("kv", HORIZON_KEY),
                                        self._k("kv", GENERATION_KEY)],
                           [key, scope, repr(float(expires_at)), self._generation(), DATA_LOST])
        return Expired(float(result[0])) if isinstance(result, list) else int(result)

    def uses(self, key: str) -> int:
        raw = self._call(lambda r: r.hget(self._k("uses"), key))
        return int(raw) if raw is not None else 0

    def horizon(self) -> float:
        raw = self.get(HORIZON_KEY)
        return NO_HORIZON if raw is None else float(raw)

    def _nonce(self) -> str:
        with self._lock:
            self._nonce_seq += 1
            return f"{self._nonce_prefix}-{process.pid()}-{threading.get_ident()}-{self._nonce_seq}"

    # --- runtime apps --------------------------------------------------------------
    def app_add(self, app_key: str, doc: str) -> bool:
        return bool(self._call(lambda r: r.hsetnx(self._k("apps"), app_key, doc)))

    def app_remove(self, app_key: str) -> bool:
        return bool(self._call(lambda r: r.hdel(self._k("apps"), app_key)))

    def app_docs(self, app_key: str | None = None) -> dict[str, str]:
        if app_key is not None:
            doc = self._call(lambda r: r.hget(self._k("apps"), app_key))
            return {} if doc is None else {app_key: str(doc)}
        rows = self._call(lambda r: r.hgetall(self._k("apps")))
        return {str(k): str(v) for k, v in sorted(rows.items())}

    # --- journal -------------------------------------------------------------------
    def journal_append(self, entry: Record, *, capacity: int) -> int:
        """The id comes from the `journal_seq` counter inside the same script as the insert (one
        script numbers a whole pipeline's entries); the stored JSON leaves it out and readers put
        it back from the hash field. Stored before this returns."""
        entry = {k: v for k, v in entry.items() if k != "id"}
        keys = (self._k("journal", "ids"), self._k("journal", "entries"), self._k("counters"))
        return int(self._batched(Append(keys, JOURNAL_SEQ, dump(entry), int(capacity))))

    def journal_query(self, query: JournalQuery) -> list[Record]:
        """Walk the ids (oldest first after `after_id`, else newest first) in chunks, filtering
        here: the journal is bounded, so a query reads at most `capacity` entries."""
        found: list[Record] = []
        start = 0
        while len(found) < query.limit:
            ids = self._id_chunk(query.after_id, start)
            if not ids:
                break
            start += len(ids)
            raw = self._entries(ids)
            for entry_id, text in zip(ids, raw, strict=True):
                if text is None:  # trimmed between the two reads
                    continue
                entry = {**load(text), "id": int(entry_id)}
                if query.matches(entry):
                    found.append(entry)
                    if len(found) == query.limit:
                        break
        return found if query.after_id else found[::-1]

    def journal_latest_id(self) -> int:
        return self.counter(JOURNAL_SEQ)

    def _id_chunk(self, after_id: int, start: int) -> list[str]:
        ids = self._k("journal", "ids")
        if after_id:
            chunk = self._call(lambda r: r.zrangebyscore(ids, f"({int(after_id)}", "+inf", start=start, num=CHUNK))
        else:
            chunk = self._call(lambda r: r.zrevrangebyscore(ids, "+inf", "-inf", start=start, num=CHUNK))
        return cast("list[str]", chunk)

    def _entries(self, ids: list[str]) -> list[str | None]:
        return cast("list[str | None]", self._call(lambda r: r.hmget(self._k("journal", "entries"), ids)))

    # --- maintenance ---------------------------------------------------------------
    def reset(self, scope: str | None = None, *, keep_uses: bool = False) -> None:
        if scope is None:
            self._run("reset_all", _reset_all_script(self.prefix), [], [])
            return
        for family in (f for f in FAMILIES if not (keep_uses and f in SINGLE_USE)):
            keys = self._family(family, scope)[:4]
            self._run("reset_scope", RESET_FAMILY_SCOPE, [keys[0], keys[1], keys[3], keys[2]], [])
        self._run("reset_journal_scope", RESET_JOURNAL_SCOPE,
                  [self._k("journal", "ids"), self._k("journal", "entries")], [scope])

    def purge(self, now: float) -> int:
        """Single-use families first raise the horizon, then drop their rows (one script each)."""
        total = 0
        for family in FAMILIES:
            horizon = self._k("kv", HORIZON_KEY) if family in SINGLE_USE else ""
            keys = [self._k(family), self._k(family, "owner"), self._k(family, "expiry"), horizon]
            total += int(self._run("purge", PURGE, keys, [repr(float(now)), self._k(family, "scope", "")]))
        return total

    def ping(self) -> None:
        generation = self._generation()  # made first, on a fresh database
        self._same_data(generation, self._call(lambda r: r.get(self._k("kv", GENERATION_KEY))))

    def stats(self) -> dict[str, int]:
        def count(r: redis.Redis) -> dict[str, int]:
            pipe = r.pipeline(transaction=False)
            for family in FAMILIES:
                pipe.hlen(self._k(family))
            pipe.zcard(self._k("journal", "ids"))
            return dict(zip((*FAMILIES, "journal"), pipe.execute(), strict=True))

        return self._call(count)

    def close(self) -> None:
        client, self._client = self._client, None
        pipeline, self._pipeline, self._group = self._pipeline, None, None
        if self._pid == process.pid():
            if pipeline is not None:
                pipeline.close()
            if client is not None:
                client.close()


def _reset_all_script(prefix: str) -> str:
    """Delete every consumed row, use, counter, scope set, journal entry and the purge horizon
    in one atomic step (the other kv rows — secret, profile, clock — stay, as in the other backends)."""
    p = prefix.replace("\\", "\\\\").replace("'", "\\'")
    return f"""
local p = '{p}:'
for _, scope in ipairs(redis.call('SMEMBERS', p .. 'scopes')) do
  redis.call('DEL', p .. 'consumed:scope:' .. scope, p .. 'counters:scope:' .. scope, p .. 'uses:scope:' .. scope)
end
redis.call('DEL', p .. 'scopes', p .. 'consumed', p .. 'consumed:owner', p .. 'consumed:expiry',
           p .. 'uses', p .. 'uses:owner', p .. 'uses:expiry',
           p .. 'counters', p .. 'counters:owner', p .. 'counters:expiry', p .. 'journal:ids', p .. 'journal:entries',
           p .. 'kv:{HORIZON_KEY}')
return 0
"""


PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def _split_prefix(url: str) -> tuple[str, str]:
    """Take our own `prefix` query parameter out of the URL; the rest is redis-py's."""
    parts = urlsplit(url)
    if parts.path.strip("/") and not parts.path.strip("/").isdigit():  # redis-py would quietly use db 0
        raise ConfigError(f"--store {_redacted(url)}: the database must be a number (redis://host:port/0)")
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((v for k, v in query if k == "prefix"), "") or DEFAULT_PREFIX
    if not PREFIX.fullmatch(prefix):  # it names keys and is written into a Lua script
        raise ConfigError(f"--store {_redacted(url)}: prefix {prefix[:70]!r} may hold only letters, digits "
                          "and _ . : - (at most 64)")
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


def _redacted(url: str) -> str:
    """The URL as shown in the banner and health answers: never with its password."""
    return redact_url(url)
