"""The active fault profile, shared by every worker through the store, with shared rule counters.

The store holds the profile document and, beside it, a version string, always written together
in one atomic step (`Store.set_many`). Each process keeps
the parsed profile cached under that version, so with no profile active a request costs one
store read (the version) and with one active it costs that read plus one counter bump per
rule it reaches. Counter keys carry the activation's version: a fresh activation starts
every `first`/`after`/`every`/`times` from zero; a full reset clears them too. Counters live in
their own store scope, which every switch clears, and a profile with a TTL gives them its
expiry, so neither switches nor time make the store grow."""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..store.base import Store
from . import engine, loader
from .engine import Decision, Facts
from .profile import Profile, ProfileError, parse_profile

VERSION_KEY = "fault_profile_version"
DOC_KEY = "fault_profile"
RELOAD_CLAIM = "fault_profile_reload:"
HITS = ":hits"  # suffix of a rule's counter of firings (":fired" counts only for `times` with `probability`)
RELOAD_REFUSED = "fault_profile_reload_refused"  # the last refused edit of the watched file (for the dashboard)
RELOAD_CHECK_S = 1.0
RELOAD_CLAIM_LIFE_S = 300.0  # a claim only has to outlive the other workers' next stat (1 s)
FAULT_SCOPE = ":faults"  # the store scope of rule counters (no app key contains a colon)

log = logging.getLogger("captchala_emulator.faults")


class Unread:
    """The profile version was not read yet (FaultState.current reads it itself)."""


UNREAD = Unread()


@dataclass(frozen=True)
class Active:
    version: str
    profile: Profile
    source: str
    activated_at: float  # virtual time
    seed: int
    file: str | None = None  # watched for changes when set
    mtime_ns: int | None = None

    @property
    def expires_at(self) -> float | None:
        return None if self.profile.ttl_s is None else self.activated_at + self.profile.ttl_s

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def counter_key(self, rule: str) -> str:
        return f"fault:{self.profile.name}:{self.version}:{rule}"

    def count(self, store: Store, key: str) -> int:
        """Bump a rule counter: in the faults scope (each switch drops the previous activation's),
        and, for a profile with a TTL, expiring with the activation (the janitor drops them)."""
        return store.incr(key, scope=FAULT_SCOPE, expires_at=self.expires_at)


class FaultState:
    """Activate, deactivate and consult the shared profile; one per Runtime (per process)."""

    def __init__(self, store: Store, *, default_seed: int = 0, sleep: Callable[[float], None] | None = None,
                 monotonic: Callable[[], float] = time.monotonic):
        self.store = store
        self.default_seed = default_seed
        self.sleep = sleep or _sleep  # injected so unit tests never really sleep
        self._monotonic = monotonic
        self._cache: Active | None = None  # harmless per-process copy, keyed by version
        self._next_stat = 0.0
        self._seen_edit: tuple[str, int] | None = None

    # --- switching -----------------------------------------------------------------
    def activate(self, profile: Profile, *, source: str, now: float, file: str | None = None,
                 mtime_ns: int | None = None) -> Active:
        """Make `profile` the active one for every worker (a new version: counters start at zero)."""
        version = secrets.token_hex(8)
        doc = {"version": version, "source": source, "activated_at": now, "file": file, "mtime_ns": mtime_ns,
               "profile": dict(profile.doc)}
        self.store.reset(FAULT_SCOPE)  # the previous activation's counters (a new one starts at zero)
        # one atomic step: two separate writes let concurrent switches pair one profile's
        # version with another's document, and workers then applied different profiles for good
        self.store.set_many({DOC_KEY: json.dumps(doc, separators=(",", ":")), VERSION_KEY: version})
        active = self._from_doc(doc)
        self._cache = active
        return active

    def activate_loaded(self, loaded: loader.Loaded, now: float) -> Active:
        return self.activate(loaded.profile, source=loaded.source, now=now, file=loaded.file,
                             mtime_ns=loaded.mtime_ns)

    def deactivate(self) -> None:
        """No profile: the version becomes empty (not absent, so `adopt` knows it was decided)."""
        self.store.reset(FAULT_SCOPE)
        self.store.set_many({VERSION_KEY: "", DOC_KEY: None})
        self._cache = None

    def start(self, spec: str | None, now: float) -> Active | None:
        """`serve --profile`: load it (ProfileError on any problem) and activate it, or clear any."""
        if not spec:
            self.deactivate()
            return None
        return self.activate_loaded(loader.load(spec), now)

    def adopt(self, spec: str | None, now: float) -> Active | None:
        """An app built without `serve` (tests, the plugin): apply --profile only to a store that
        has never had a profile decision, so gunicorn workers never re-activate the master's."""
        if not spec or self.store.get(VERSION_KEY) is not None:
            return None
        return self.start(spec, now)

    # --- the hot path --------------------------------------------------------------
    def current(self, now: Callable[[], float], version: str | None | Unread = UNREAD) -> Active | None:
        """The active, unexpired profile (reloaded first if its file changed). `version` is the
        stored VERSION_KEY when the caller already read it (Runtime.moment), else it is read here."""
        if isinstance(version, Unread):
            version = self.store.get(VERSION_KEY)
        if not version:
            return None
        active = self._cached(version)
        if active is None:
            return None
        if active.file:
            active = self._maybe_reload(active, now)
        if active.profile.ttl_s is not None and active.expired(now()):
            return None
        return active

    def decide(self, endpoint: str, facts: Callable[[], Facts], now: Callable[[], float],
               version: str | None | Unread = UNREAD) -> Decision | None:
        """Which rule fires for this request, counting it in the shared store."""
        active = self.current(now, version)
        if active is None or not any(endpoint in r.match.endpoints for r in active.profile.rules):
            return None
        decision = engine.decide(active.profile, active.seed, facts(),
                                 next_count=lambda rule: active.count(self.store, active.counter_key(rule)),
                                 next_firing=lambda rule: active.count(self.store, active.counter_key(rule) + ":fired"))
        if decision is not None:  # how often each rule fired, for GET /_emulator/profile and the dashboard
            active.count(self.store, active.counter_key(decision.rule.name) + HITS)
        return decision

    def active_name(self, now: Callable[[], float]) -> str | None:
        active = self.current(now)
        return active.profile.name if active else None

    # --- the control plane's view --------------------------------------------------
    def describe(self, now: Callable[[], float]) -> dict[str, Any]:
        self.current(now)  # looking also picks up an edited profile file
        version = self.store.get(VERSION_KEY)
        active = self._cached(version) if version else None
        if active is None:
            return {"active": False, "name": None}
        at = now()
        p = active.profile
        return {
            "active": not active.expired(at), "expired": active.expired(at), "name": p.name,
            "description": p.description, "source": active.source, "watching": active.file,
            "seed": active.seed, "ttl_s": p.ttl_s, "activated_at": active.activated_at,
            "expires_at": active.expires_at, "version": active.version,
            "rules": [{"name": r.name, "endpoints": list(r.match.endpoints), "effect": r.effect.describe(),
                       "matched": self.store.counter(active.counter_key(r.name)),
                       "fired": self.store.counter(active.counter_key(r.name) + HITS)} for r in p.rules],
            "profile": dict(p.doc),
            "reload_refused": self._refused(active.version),
        }

    def _refused(self, version: str) -> dict[str, Any] | None:
        """The refused edit of the active version's file, if its latest edit was refused."""
        raw = self.store.get(RELOAD_REFUSED)
        refused = json.loads(raw) if raw else None
        return refused if isinstance(refused, dict) and refused.get("version") == version else None

    # --- internals -----------------------------------------------------------------
    def _cached(self, version: str) -> Active | None:
        cache = self._cache
        if cache is not None and cache.version == version:
            return cache
        raw = self.store.get(DOC_KEY)
        if raw is None:
            return None
        try:
            active = self._from_doc(json.loads(raw))
        except (ProfileError, ValueError, KeyError, TypeError) as exc:  # written by another version?
            log.warning("ignoring the stored fault profile: %s", exc)
            return None
        self._cache = active
        return active

    def _from_doc(self, doc: dict[str, Any]) -> Active:
        profile = parse_profile(doc["profile"], doc["source"])
        seed = self.default_seed if profile.seed is None else profile.seed
        return Active(doc["version"], profile, doc["source"], float(doc["activated_at"]), seed, doc.get("file"),
                      doc.get("mtime_ns"))

    def _maybe_reload(self, active: Active, now: Callable[[], float]) -> Active:
        """At most once a second per process: if the watched file changed, one worker (the one
        that claims the edit in the store) re-reads it; a broken edit is logged and ignored."""
        tick = self._monotonic()
        if tick < self._next_stat or active.file is None:
            return active
        self._next_stat = tick + RELOAD_CHECK_S
        try:
            mtime = os.stat(active.file).st_mtime_ns
        except OSError:
            return active  # removed or unreadable: keep the last good profile
        if mtime == active.mtime_ns or self._seen_edit == (active.version, mtime):
            return active
        self._seen_edit = (active.version, mtime)
        claim = f"{RELOAD_CLAIM}{active.version}:{mtime}"  # a counter: purge and reset remove it
        if self.store.incr(claim, expires_at=now() + RELOAD_CLAIM_LIFE_S) != 1:
            return active  # another worker handles this edit
        try:
            loaded = loader.load_file(active.file, source=active.source)
        except ProfileError as exc:
            log.warning("fault profile file changed but is invalid; keeping profile %r: %s", active.profile.name, exc)
            self.store.set(RELOAD_REFUSED, json.dumps({"version": active.version, "file": active.file,
                                                      "mtime_ns": mtime, "problem": str(exc), "at": now()}))
            return active
        fresh = self.activate_loaded(loaded, now())
        log.warning("fault profile reloaded from %s: now %r (%d rules)", active.source, fresh.profile.name,
                    len(fresh.profile.rules))
        return fresh


def _sleep(seconds: float) -> None:
    """time.sleep looked up per call: a gevent worker patches it after this module was imported
    (a default argument bound at import would block the whole worker instead of one greenlet)."""
    time.sleep(seconds)
