"""Apps (key pairs): the model, the seven built-in test apps, and strict loading of an apps file."""

from __future__ import annotations

import dataclasses
import hmac
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, get_args

import yaml

from ..config_files import MAX_YAML_DEPTH, FileRefused, YamlNotText, YamlTooDeep, read_text, safe_load_yaml
from ..errors import CaptchalaEmulatorError, ConfigError

SolveMode = Literal["click", "auto", "fail", "never"]
IpBinding = Literal["lenient", "strict"]
SOLVE_MODES: tuple[SolveMode, ...] = get_args(SolveMode)
IP_BINDING_MODES: tuple[IpBinding, ...] = get_args(IpBinding)
MAX_RUNTIME_APPS = 1000  # POST /_emulator/apps: bounded, like every other store row

DEFAULT_MODERATION = {
    "violence": ["kill", "violence"],
    "hate": ["hate"],
    "sexual": ["nsfw"],
    "self-harm": ["self-harm"],
    "csam": [],
}


@dataclass(frozen=True)
class Widget:
    """How the stub browser widget behaves for an app."""

    solve: SolveMode = "click"
    delay_ms: int = 0
    error: str = "invalid_token"


@dataclass(frozen=True)
class App:
    app_key: str
    app_secret: str
    name: str = ""
    pass_token_ttl: int = 300
    server_token_required: bool = False
    ip_binding: IpBinding = "lenient"
    disabled: bool = False
    risk_score: int = 10
    widget: Widget = field(default_factory=Widget)
    rate_limit: int | None = None  # requests per minute, shared by all workers
    quota: int | None = None  # solves before the widget turns to degraded dg_ tokens
    moderation: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    always_fail: bool = False
    legacy_fields: bool = False  # validate's data also carries risk_score, client_ip, offline (older docs)
    builtin: bool = False
    runtime: bool = False  # added through POST /_emulator/apps (kept in the store)

    def secret_matches(self, secret: str | None) -> bool:
        """Constant-time comparison (docs/compatibility.md §2)."""
        return secret is not None and hmac.compare_digest(secret.encode(), self.app_secret.encode())

    def moderation_categories(self) -> Mapping[str, tuple[str, ...]]:
        return self.moderation or {k: tuple(v) for k, v in DEFAULT_MODERATION.items()}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["moderation"] = {k: list(v) for k, v in self.moderation_categories().items()}
        return data


BUILTIN_APPS: tuple[App, ...] = (
    App("demo_app", "demo_secret", name="Demo (click to solve)", builtin=True),
    App("auto_pass_app", "auto_pass_secret", name="Solves by itself",
        widget=Widget(solve="auto"), builtin=True),
    App("always_fail_app", "always_fail_secret", name="Always fails",
        widget=Widget(solve="fail", error="invalid_token"), always_fail=True, builtin=True),
    App("server_token_app", "server_token_secret", name="Requires a server token",
        server_token_required=True, builtin=True),
    App("strict_ip_app", "strict_ip_secret", name="Strict IP binding",
        ip_binding="strict", builtin=True),
    App("degraded_app", "degraded_secret", name="Quota exhausted (dg_ tokens)",
        quota=0, builtin=True),
    App("disabled_app", "disabled_secret", name="Disabled", disabled=True, builtin=True),
)


class RuntimeApps(Protocol):
    """The store's runtime-app rows (the part of the Store the registry needs)."""

    def app_add(self, app_key: str, doc: str) -> bool: ...

    def app_remove(self, app_key: str) -> bool: ...

    def app_docs(self, app_key: str | None = None) -> dict[str, str]: ...


class AppRegistry:
    """The apps known to this emulator, looked up by key: the built-in and file apps (fixed at
    start) and the runtime apps, which live in the store so that every worker and replica sees
    an added or removed app at once. A runtime app's definition is parsed once per process."""

    def __init__(self, apps: Iterable[App], store: RuntimeApps | None = None):
        self._by_key: dict[str, App] = {}
        for app in apps:
            self._by_key[app.app_key] = app  # a file may override a built-in
        self._store = store
        self._parsed: dict[str, tuple[str, App]] = {}  # app_key -> (definition, App)

    def get(self, app_key: str | None) -> App | None:
        if not app_key:
            return None
        app = self._by_key.get(app_key)
        if app is not None or self._store is None or not isinstance(app_key, str):
            return app
        doc = self._store.app_docs(app_key).get(app_key)
        return None if doc is None else self._parse(app_key, doc)

    def owner_of_secret(self, secret: str | None) -> App | None:
        """Which app a (wrong) secret belongs to, for the human reason only."""
        for app in self:
            if app.secret_matches(secret):
                return app
        return None

    def is_fixed(self, app_key: str) -> bool:
        """A built-in or apps-file app (these cannot be removed at run time)."""
        return app_key in self._by_key

    def add(self, item: Any) -> App:
        """Validate like an apps-file entry and keep it in the store; ConfigError if invalid,
        AppExists if the key is taken."""
        app = dataclasses.replace(parse_app(item, "app"), runtime=True)
        if self._store is None:
            raise ConfigError("app: this emulator has no store for runtime apps")
        if len(self._store.app_docs()) >= MAX_RUNTIME_APPS:
            raise ConfigError(f"app: at most {MAX_RUNTIME_APPS} runtime apps; remove some first")
        if self.is_fixed(app.app_key) or not self._store.app_add(app.app_key, json.dumps(dict(item), sort_keys=True)):
            raise AppExists(app.app_key)
        return app

    def remove(self, app_key: str) -> bool:
        """Forget a runtime app; False if no runtime app has that key."""
        self._parsed.pop(app_key, None)
        return self._store is not None and self._store.app_remove(app_key)

    def _parse(self, app_key: str, doc: str) -> App:
        cached = self._parsed.get(app_key)
        if cached is not None and cached[0] == doc:
            return cached[1]
        app = dataclasses.replace(parse_app(json.loads(doc), "app"), runtime=True)
        self._parsed[app_key] = (doc, app)
        return app

    def _runtime_apps(self) -> list[App]:
        if self._store is None:
            return []
        return [self._parse(k, doc) for k, doc in self._store.app_docs().items() if k not in self._by_key]

    def __iter__(self) -> Iterator[App]:
        return iter([*self._by_key.values(), *self._runtime_apps()])

    def __len__(self) -> int:
        return len(self._by_key) + len(self._runtime_apps())


class AppExists(CaptchalaEmulatorError):
    """POST /_emulator/apps with a key that is already in use."""

    def __init__(self, app_key: str):
        super().__init__(f"an app with key {app_key!r} exists already")
        self.app_key = app_key


def load_registry(path: str | None, include_builtin: bool = True, store: RuntimeApps | None = None) -> AppRegistry:
    apps: list[App] = list(BUILTIN_APPS) if include_builtin else []
    if path:
        apps.extend(load_apps_file(path))
    return AppRegistry(apps, store)


def load_apps_file(path: str) -> list[App]:
    """Load and strictly validate an apps YAML file; ConfigError names file, key path, problem."""
    try:
        text, _ = read_text(path)
    except FileRefused as exc:
        raise ConfigError(f"{path}: cannot read apps file: {exc.problem}") from None
    try:
        doc = safe_load_yaml(text)
    except YamlTooDeep:
        raise ConfigError(f"{path}: invalid YAML: nested too deeply (more than {MAX_YAML_DEPTH} levels)") from None
    except YamlNotText as exc:  # key paths start at the apps list, whichever form the file has
        raise ConfigError(f"{path}: {'apps' if exc.where.startswith('[') else ''}{exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {_yaml_problem(exc)}") from None
    if isinstance(doc, Mapping) and set(doc) == {"apps"}:
        doc = doc["apps"]
    if not isinstance(doc, list):
        raise ConfigError(f"{path}: apps: expected a list of apps (or a mapping with the key 'apps')")
    return [parse_app(item, f"{path}: apps[{i}]") for i, item in enumerate(doc)]


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's error as one line: the problem and where."""
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    problem = getattr(exc, "problem", None) or (str(exc).splitlines() or ["unreadable"])[0]
    return f"{problem}{where}"


# inclusive bounds of the integer fields: a typo of many digits is refused at start, not at first use
_INT_RANGES = {"pass_token_ttl": (1, 10 * 365 * 86400), "risk_score": (0, 100), "rate_limit": (0, 10**9),
               "quota": (0, 10**12)}
MAX_DELAY_MS = 600_000

_APP_FIELDS = {
    "app_key": str, "app_secret": str, "name": str, "pass_token_ttl": int,
    "server_token_required": bool, "ip_binding": str, "disabled": bool, "risk_score": int,
    "widget": dict, "rate_limit": int, "quota": int, "moderation": dict, "always_fail": bool,
    "legacy_fields": bool,
}
_WIDGET_FIELDS = {"solve": str, "delay_ms": int, "error": str}


def parse_app(item: Any, where: str) -> App:
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where}: expected a mapping")
    _check_keys(item, _APP_FIELDS, where)
    for required in ("app_key", "app_secret"):
        if not item.get(required):
            raise ConfigError(f"{where}.{required}: required, non-empty string")
    values = dict(item)
    if "widget" in values:
        _check_keys(values["widget"], _WIDGET_FIELDS, f"{where}.widget")
        widget = Widget(**values["widget"])
        if widget.solve not in SOLVE_MODES:
            raise ConfigError(f"{where}.widget.solve: must be one of {', '.join(SOLVE_MODES)}")
        if not 0 <= widget.delay_ms <= MAX_DELAY_MS:
            raise ConfigError(f"{where}.widget.delay_ms: must be from 0 to {MAX_DELAY_MS}")
        values["widget"] = widget
    if values.get("ip_binding", "lenient") not in IP_BINDING_MODES:
        raise ConfigError(f"{where}.ip_binding: must be one of {', '.join(IP_BINDING_MODES)}")
    for key, (low, high) in _INT_RANGES.items():
        if values.get(key) is not None and not low <= values[key] <= high:
            raise ConfigError(f"{where}.{key}: must be between {low} and {high}")
    if "moderation" in values:
        values["moderation"] = _parse_moderation(values["moderation"], f"{where}.moderation")
    return App(**values)


def _parse_moderation(raw: Mapping, where: str) -> dict[str, tuple[str, ...]]:
    out = {}
    for category, words in raw.items():
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise ConfigError(f"{where}.{category}: expected a list of words")
        out[str(category)] = tuple(w.lower() for w in words)
    return out


def _check_keys(item: Any, schema: Mapping[str, type], where: str) -> None:
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where}: expected a mapping")
    for key, value in item.items():
        if key not in schema:
            raise ConfigError(f"{where}.{key}: unknown key (known: {', '.join(schema)})")
        expected = schema[key]
        if value is None and expected in (int,) and key in ("rate_limit", "quota"):
            continue
        ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
        if not ok:
            raise ConfigError(f"{where}.{key}: expected {expected.__name__}, got {type(value).__name__}")
