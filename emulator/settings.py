"""Settings: one frozen dataclass, read once; the only module that reads os.environ.

Each field is declared once, with its default and its help (`setting(...)`); the env twin
CAPTCHALA_EMULATOR_<NAME> and the command-line flags (see `emulator.options`) derive from it.
Adding a setting is one line here."""

from __future__ import annotations

import dataclasses
import functools
import os
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError

ENV_PREFIX = "CAPTCHALA_EMULATOR_"
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})

LogFormat = Literal["off", "text", "json"]
WorkerClass = Literal["gevent", "gthread"]
TlsMode = Literal["auto"]


def default_store_url(port: int) -> str:
    """SQLite under the user's state directory, one file per port: restarts of one instance keep
    what was consumed, two instances never share state. Port 0 (a free port picked at bind time)
    gets a file of its own process."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    name = f"state-{port}.db" if port else f"state-port0-{os.getpid()}.db"
    return f"sqlite:///{Path(base) / 'captchala-emulator' / name}"


@dataclass(frozen=True)
class Meta:
    """What a field needs besides its name, type and default to become an env twin and a flag."""

    help: str
    low: int | None = None  # inclusive bounds of an int
    high: int | None = None
    path: Literal["file", "dir"] | None = None  # the flag takes a file or a directory path
    flag: str | None = None  # flag name when it differs from the field name (--foo-bar)
    commands: tuple[str, ...] = ("serve",)  # the subcommands that take it as a flag
    shown_default: str | None = None  # how --help shows a computed default


def setting(default: Any = None, help: str = "", *, factory: Callable[[], Any] | None = None, **meta: Any) -> Any:
    """Declare a Settings field: default (or factory), help text and Meta extras."""
    metadata = {"setting": Meta(help=help, **meta)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    """Every option of `captchala-emulator serve` (and the client commands); each field `foo_bar` has the
    env twin CAPTCHALA_EMULATOR_FOO_BAR and, on the commands that take it, the flag --foo-bar."""

    host: str = setting("127.0.0.1", "Interface to bind.")
    port: int = setting(8080, "Port; 0 picks a free one.", low=0, high=65535)
    workers: int = setting(2, "Gunicorn worker processes.", low=1, high=64)
    # gevent: a request costs a greenlet while it waits (latency faults, slow clients, long-polls)
    worker_class: WorkerClass = setting("gevent", "gevent: a waiting request costs a greenlet; gthread: one of "
                                                  "--threads threads.")
    threads: int = setting(64, "Threads per worker with --worker-class gthread.", low=1, high=1024)
    apps: str | None = setting(None, "YAML file of extra apps.", path="file")
    no_builtin_apps: bool = setting(False, "Leave out the seven built-in test apps.")
    profile: str | None = setting(None, "Fault profile: a built-in name or a YAML file.")
    profiles_dir: str | None = setting(None, "Directory whose <name>.yaml files PUT /_emulator/profile may activate "
                                             "by name.", path="dir")
    store: str = setting(factory=str, help="memory://, sqlite:///path.db or redis://host:port/db.",
                         shown_default="sqlite:///$XDG_STATE_HOME/captchala-emulator/state-<port>.db")
    secret: str | None = setting(None, "Token signing secret (default: generated once, kept in the store).")
    seed: int = setting(0, "Seed of every fault decision.")
    admin_token: str | None = setting(None, "Protect /_emulator/ with Authorization: Bearer <token> (sent by mint "
                                            "and healthcheck too).", commands=("serve", "mint", "doctor", "audit"))
    allowed_host: str | None = setting(None, "Extra Host names the control plane answers to, comma-separated (e.g. "
                                             "the service name); loopback and the bound host always work.")
    trust_proxy: bool = setting(False, "Take the caller IP from X-Forwarded-For (only a value that parses as an IP).")
    tls: TlsMode | None = setting(None, "auto: make a local CA and a certificate for the real host names.")
    tls_cert: str | None = setting(None, "Your own certificate (PEM); goes with --tls-key.", path="file")
    tls_key: str | None = setting(None, "The key of --tls-cert (PEM).", path="file")
    tls_dir: str | None = setting(None, "Where --tls auto keeps its CA and certificate "
                                        "(default: tls/ beside the SQLite state).", path="dir")
    http_status_errors: bool = setting(False, "Send request-level errors with HTTP status = code (default: HTTP 200).")
    legacy_fields: bool = setting(False, "Add risk_score, client_ip and offline beside captcha_args in validate's data "
                                         "(all apps).")
    max_server_token_ttl: int = setting(3600, "Clamp of ttl at server-token issue, in seconds.", low=1,
                                        high=10 * 365 * 86400)  # ten years keeps every expiry printable
    body_timeout: int = setting(10, "Seconds a request body may stop arriving before the request is refused as "
                                    "invalid_request and its connection closed.", low=1, high=3600)
    journal_size: int = setting(1000, "Entries kept in the request journal.", low=1, high=1_000_000)
    log_format: LogFormat = setting("off", "One line per API request on stderr, as text or json (off: none).")
    quiet: bool = setting(False, "No banner.")
    show_secrets: bool = setting(False, "List the apps file's secrets in the banner too (built-in ones always show).")
    url: str | None = setting(None, "Base URL of a running emulator (default: http://127.0.0.1:<port>).",
                              commands=("mint", "doctor", "audit"))
    healthcheck_url: str | None = setting(None, "Base URL to check (default: http(s)://127.0.0.1:<port>).",
                                          flag="url", commands=("healthcheck",))

    def __post_init__(self) -> None:
        if not self.store:
            object.__setattr__(self, "store", default_store_url(self.port))

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from CAPTCHALA_EMULATOR_* variables, then explicit overrides (None = not given)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in specs():
            raw = environ.get(spec.env)
            if raw is not None and raw != "":
                values[spec.name] = spec.parse(raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def local_url(self) -> str:
        """The emulator on this machine at this port, over https when TLS is configured."""
        scheme = "https" if self.tls or self.tls_cert else "http"
        return f"{scheme}://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class Spec:
    """One field as the environment and the command line see it."""

    name: str
    kind: type  # bool, int or str
    choices: tuple[str, ...] | None
    default: Any
    meta: Meta

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + (self.meta.flag or self.name).replace("_", "-")

    def parse(self, raw: str) -> Any:
        """The value of the env twin, or ConfigError naming the variable."""
        try:
            return self._parse(raw.strip())
        except ValueError as exc:
            raise ConfigError(f"{self.env}={raw!r}: {exc}") from None

    def _parse(self, raw: str) -> Any:
        if self.kind is bool:
            word = raw.lower()
            if word not in TRUE_WORDS | FALSE_WORDS:
                raise ValueError(f"expected one of {', '.join(sorted(TRUE_WORDS | FALSE_WORDS))}")
            return word in TRUE_WORDS
        if self.kind is int:
            return self._bounded(_integer(raw))
        if self.choices is not None and raw not in self.choices:
            raise ValueError(f"expected one of {', '.join(self.choices)}")
        return raw

    def _bounded(self, value: int) -> int:
        low, high = self.meta.low, self.meta.high
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"must be in {low if low is not None else ''}..{high if high is not None else ''}")
        return value


def _integer(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("not an integer") from None


@functools.cache
def specs() -> tuple[Spec, ...]:
    """Every Settings field with its parsed type, in declaration order."""
    hints = typing.get_type_hints(Settings)
    return tuple(_spec(f, hints[f.name]) for f in fields(Settings))


def _spec(f: dataclasses.Field[Any], hint: Any) -> Spec:
    inner = _strip_none(hint)
    choices = typing.get_args(inner) if typing.get_origin(inner) is Literal else None
    kind = str if choices is not None else inner
    default = None if f.default is dataclasses.MISSING else f.default
    return Spec(f.name, kind, choices, default, f.metadata["setting"])


def _strip_none(hint: Any) -> Any:
    """`X | None` -> X."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else hint
    return hint
