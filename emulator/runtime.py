"""Runtime: every object that lives for the life of one app (the flaskr `extensions` idea).

Built once by create_app; nothing module-level changes at run time."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from .domain.apps import AppRegistry, load_registry
from .domain.challenges import ChallengeCodec
from .domain.clock import CLOCK_KEY, Clock
from .domain.journal import Journal
from .domain.tokens import TokenSigner
from .errors import StoreUnavailable
from .faults.state import VERSION_KEY, FaultState
from .settings import Settings
from .store import Store, open_store

SECRET_KEY = "signing_secret"


@dataclass(frozen=True)
class Moment:
    vts: float  # virtual now
    profile_version: str | None  # the active fault profile's version ("" or None: none)


@dataclass
class Runtime:
    settings: Settings
    apps: AppRegistry
    store: Store
    clock: Clock
    signer: TokenSigner
    journal: Journal
    faults: FaultState
    codec: ChallengeCodec  # signs browser challenges with the same shared secret as the tokens
    secret: str = ""  # the signing secret this process uses (kept in the store unless --secret)
    # under `serve`: how many gunicorn workers listen now (health waits for all of them)
    workers_listening: Callable[[], int] | None = None

    def moment(self) -> Moment:
        """What a request needs of the rarely changing shared state, in one store read: the
        clock offset (virtual now) and the active profile's version."""
        stored = self.store.get_many((CLOCK_KEY, VERSION_KEY))
        return Moment(self.clock.now_with(stored[CLOCK_KEY]), stored[VERSION_KEY])

    def active_profile_name(self) -> str | None:
        """The active fault profile's name (None when none is active, it expired, or the store is down)."""
        try:
            return self.faults.active_name(self.clock.now)
        except StoreUnavailable:
            return None

    def ping(self) -> None:
        """Raise StoreUnavailable if this process cannot serve: the store is down, or the
        store's shared signing secret is not the one this process signs with."""
        self.store.ping()
        problem = secret_problem(self.settings, self.store, self.secret)
        if problem:
            raise StoreUnavailable(problem)

    def reset(self, app_key: str | None = None) -> None:
        """Forget consumed tokens, counters and the journal; a full reset also resets the clock."""
        self.store.reset(app_key)
        if app_key is None:
            self.clock.reset()


def shared_secret(settings: Settings, store: Store) -> str:
    """--secret if given, else the first process's random secret kept in the store (docs/compatibility.md §8)."""
    if settings.secret:
        return settings.secret
    return store.set_if_absent(SECRET_KEY, secrets.token_urlsafe(32))


def secret_problem(settings: Settings, store: Store, mine: str) -> str | None:
    """Re-assert this process's secret in the store (a store that lost its data gets it back,
    so replicas started later adopt it); a different stored secret is a split, never silent."""
    if settings.secret:
        return None
    stored = store.set_if_absent(SECRET_KEY, mine)
    if stored == mine:
        return None
    return ("the store holds a different signing secret than this process signs with (the store lost its data "
            "and another process made a new one): tokens are refused across processes; restart this process to "
            "adopt the store's secret, or give every replica the same --secret")


def build_runtime(settings: Settings, *, real_time: Callable[[], float] | None = None,
                  store: Store | None = None, sleep: Callable[[float], None] | None = None) -> Runtime:
    store = store or open_store(settings.store)
    apps = load_registry(settings.apps, include_builtin=not settings.no_builtin_apps, store=store)
    clock = Clock(store, real_time) if real_time else Clock(store)
    secret = shared_secret(settings, store)
    faults = FaultState(store, default_seed=settings.seed, sleep=sleep or time.sleep)
    return Runtime(settings, apps, store, clock, TokenSigner(secret), Journal(store, settings.journal_size), faults,
                   ChallengeCodec(secret), secret)
