"""A fault profile: YAML (or an already parsed mapping) checked strictly into frozen dataclasses.

Every problem is refused with the source (file or API), the key path and what is wrong, e.g.
`profiles/x.yaml: rules[1].effect.latency_ms.p99: must be >= median (120)`. A profile that
parses is known to be applicable: each effect only names endpoints where it can act."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..config_files import MAX_YAML_DEPTH, YamlNotText, YamlTooDeep, safe_load_yaml
from ..domain.json_codec import LONE_SURROGATE
from .effects import ENDPOINTS, MAIN, VALIDATES, Connection, Effect, Latency, parse_effect  # noqa: F401 (re-exported)
from .reader import NAME, ProfileError, Reader, type_name  # noqa: F401 (NAME re-exported)

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")

__all__ = ["ENDPOINTS", "MAIN", "VALIDATES", "Connection", "Effect", "Latency", "Match", "Profile",
           "ProfileError", "Rule", "When", "load_yaml", "parse_profile"]


@dataclass(frozen=True)
class Match:
    endpoints: tuple[str, ...]
    app_key: str | None = None  # glob
    action: str | None = None  # glob
    methods: tuple[str, ...] | None = None


@dataclass(frozen=True)
class When:
    probability: float | None = None
    first: int | None = None
    after: int | None = None
    every: int | None = None
    times: int | None = None

    @property
    def counted_by_firing(self) -> bool:
        """`times` with a probability needs its own shared counter of firings."""
        return self.times is not None and self.probability is not None


@dataclass(frozen=True)
class Rule:
    name: str
    match: Match
    when: When
    effect: Effect


@dataclass(frozen=True)
class Profile:
    name: str
    rules: tuple[Rule, ...]
    seed: int | None = None
    ttl_s: float | None = None
    description: str = ""
    doc: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)  # JSON-safe source


# --- parsing -----------------------------------------------------------------------


MAX_RULES = 100
MAX_TTL_S = 10 * 365 * 86400  # ten years: past that, an expiry is not a test's business


def load_yaml(text: str, source: str, default_name: str = "custom") -> Profile:
    """Parse YAML text into a checked Profile (bad YAML is a ProfileError too)."""
    try:
        doc = safe_load_yaml(text)
    except YamlTooDeep:
        raise ProfileError(source, "", f"invalid YAML: nested too deeply (more than {MAX_YAML_DEPTH} levels)") from None
    except YamlNotText as exc:
        raise ProfileError(source, exc.where, LONE_SURROGATE) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ProfileError(source, "", f"invalid YAML{where}: {problem}") from None
    return parse_profile(doc, source, default_name)


def parse_profile(doc: Any, source: str, default_name: str = "custom") -> Profile:
    """Check a parsed document strictly and build the Profile."""
    r = Reader(source)
    top = r.mapping(doc, "", {"name", "description", "seed", "ttl_s", "rules"})
    name = r.name(top.get("name", default_name), "name")
    description = r.string(top["description"], "description") if "description" in top else ""
    seed = r.integer(top["seed"], "seed") if top.get("seed") is not None else None
    ttl = (r.number(top["ttl_s"], "ttl_s", minimum=0, exclusive=True, maximum=MAX_TTL_S)
           if top.get("ttl_s") is not None else None)
    raw_rules = top.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        r.fail("rules", "required: a non-empty list of rules" if raw_rules is None or raw_rules == []
               else f"expected a list of rules, got {type_name(raw_rules)}")
    if len(raw_rules) > MAX_RULES:  # each request is matched against every rule
        r.fail("rules", f"at most {MAX_RULES} rules, got {len(raw_rules)}")
    rules = tuple(_rule(r, item, f"rules[{i}]") for i, item in enumerate(raw_rules))
    seen: dict[str, int] = {}
    for i, rule in enumerate(rules):
        if rule.name in seen:
            r.fail(f"rules[{i}].name", f"duplicate rule name {rule.name!r} (also rules[{seen[rule.name]}])")
        seen[rule.name] = i
    return Profile(name, rules, seed, ttl, description, {**top, "name": name})


def _rule(r: Reader, item: Any, path: str) -> Rule:
    raw = r.mapping(item, path, {"name", "match", "when", "effect"})
    if "name" not in raw:
        r.fail(f"{path}.name", "required (a short name: it appears in X-Captchala-Emulator-Fault)")
    name = r.name(raw["name"], f"{path}.name")
    if "effect" not in raw:
        r.fail(f"{path}.effect", "required: what happens when the rule fires")
    effect, applies = parse_effect(r, raw["effect"], f"{path}.effect")
    match = _match(r, _or_empty(raw.get("match")), f"{path}.match", applies)
    when = _when(r, _or_empty(raw.get("when")), f"{path}.when")
    return Rule(name, match, when, effect)


def _or_empty(value: Any) -> Any:
    """`match:` / `when:` left empty in YAML (null) means "always"."""
    return {} if value is None else value


def _match(r: Reader, raw: Any, path: str, applies: dict[str, tuple[str, ...]]) -> Match:
    m = r.mapping(raw, path, {"endpoint", "app_key", "action", "method"})
    allowed = set(ENDPOINTS)
    for values in applies.values():
        allowed &= set(values)
    if "endpoint" in m:
        endpoints = r.choices(m["endpoint"], f"{path}.endpoint", ENDPOINTS)
        for i, endpoint in enumerate(endpoints):
            if endpoint not in allowed:
                key = next(k for k, v in applies.items() if endpoint not in v)
                where = f"{path}.endpoint" + (f"[{i}]" if isinstance(m["endpoint"], list) else "")
                r.fail(where, f"effect.{key} cannot act on {endpoint} (it applies to {', '.join(applies[key])})")
    else:
        endpoints = tuple(e for e in ENDPOINTS if e in allowed)
    methods = None
    if "method" in m:
        methods = tuple(x.upper() for x in r.choices(m["method"], f"{path}.method", METHODS, fold=True))
    app_key = r.string(m["app_key"], f"{path}.app_key") if "app_key" in m else None
    action = r.string(m["action"], f"{path}.action") if "action" in m else None
    return Match(endpoints, app_key, action, methods)


def _when(r: Reader, raw: Any, path: str) -> When:
    w = r.mapping(raw, path, {"probability", "first", "after", "every", "times"})
    probability = None
    if "probability" in w:
        probability = r.number(w["probability"], f"{path}.probability", minimum=0, maximum=1)
    first = r.integer(w["first"], f"{path}.first", minimum=1) if "first" in w else None
    after = r.integer(w["after"], f"{path}.after", minimum=0) if "after" in w else None
    every = r.integer(w["every"], f"{path}.every", minimum=1) if "every" in w else None
    times = r.integer(w["times"], f"{path}.times", minimum=1) if "times" in w else None
    if first is not None and after is not None and after >= first:
        r.fail(f"{path}.after", f"must be < first ({first}): the rule could never fire")
    if first is not None and every is not None and every > first:
        r.fail(f"{path}.every", f"must be <= first ({first}): the rule could never fire")
    return When(probability, first, after, every, times)
