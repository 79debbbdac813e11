"""Settings: one frozen dataclass, read once; the only module that reads os.environ."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

ENV_PREFIX = "CAPTCHALA_EMULATOR_"


def default_store_url() -> str:
    """SQLite under the user's state directory, so restarts keep what was consumed."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return f"sqlite:///{Path(base) / 'captchala-emulator' / 'state.db'}"


@dataclass(frozen=True)
class Settings:
    """Every option of `captchala-emulator serve`; each field `foo_bar` has the env twin
    CAPTCHALA_EMULATOR_FOO_BAR and the flag --foo-bar."""

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 2
    # A latency fault holds a thread: with 32, an uneven keep-alive spread (38/26 at 64
    # connections) queued requests and put the fault's p50 10 % over its setting; 64 keeps it within 5 %.
    threads: int = 64
    apps: str | None = None
    no_builtin_apps: bool = False
    profile: str | None = None
    store: str = field(default_factory=default_store_url)
    secret: str | None = None
    seed: int = 0
    admin_token: str | None = None
    trust_proxy: bool = False
    tls: str | None = None  # "auto" or None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_dir: str | None = None
    http_status_errors: bool = False
    max_server_token_ttl: int = 3600
    journal_size: int = 1000
    log_format: str = "text"  # text | json
    quiet: bool = False

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> Settings:
        """Build settings from CAPTCHALA_EMULATOR_* variables, then explicit overrides."""
        environ = os.environ if environ is None else environ
        values: dict = {}
        for f in fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _coerce(f, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _coerce(f: dataclasses.Field, raw: str):
    kind = str(f.type)
    if kind.startswith("bool"):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if kind.startswith("int"):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"{ENV_PREFIX}{f.name.upper()}={raw!r} is not an integer") from None
    return raw
