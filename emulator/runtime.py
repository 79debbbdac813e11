"""Runtime: every object that lives for the life of one app (the flaskr `extensions` idea).

Built once by create_app; nothing module-level changes at run time."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Callable

from .apps import AppRegistry, load_registry
from .clock import Clock
from .journal import Journal
from .settings import Settings
from .store import Store, open_store
from .tokens import TokenSigner

SECRET_KEY = "signing_secret"


@dataclass
class Runtime:
    settings: Settings
    apps: AppRegistry
    store: Store
    clock: Clock
    signer: TokenSigner
    journal: Journal

    def reset(self, app_key: str | None = None) -> None:
        """Forget consumed tokens, counters and the journal; a full reset also resets the clock."""
        self.store.reset(app_key)
        if app_key is None:
            self.clock.reset()


def shared_secret(settings: Settings, store: Store) -> str:
    """--secret if given, else the first process's random secret kept in the store (contract §1)."""
    if settings.secret:
        return settings.secret
    return store.set_if_absent(SECRET_KEY, secrets.token_urlsafe(32))


def build_runtime(settings: Settings, *, real_time: Callable[[], float] | None = None,
                  store: Store | None = None) -> Runtime:
    store = store or open_store(settings.store)
    apps = load_registry(settings.apps, include_builtin=not settings.no_builtin_apps)
    clock = Clock(store, real_time) if real_time else Clock(store)
    signer = TokenSigner(shared_secret(settings, store))
    return Runtime(settings, apps, store, clock, signer, Journal(store, settings.journal_size))
