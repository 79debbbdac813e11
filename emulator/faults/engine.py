"""Decide, purely, which rule of a profile fires for one request, and with which latency.

Every random draw is a hash of (seed, rule name, n, purpose) where n is the rule's shared
match counter: the same seed and the same request sequence give the same decisions in any
number of workers, with no per-process random stream (a per-process seed would make workers disagree)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from statistics import NormalDist
from typing import overload

from .profile import Latency, Profile, Rule, When

Z99 = NormalDist().inv_cdf(0.99)  # the lognormal's p99 sits this many sigmas above its median


@dataclass(frozen=True)
class Facts:
    """What a rule's `match` can look at (unknown facts are None and match no glob)."""

    endpoint: str
    method: str = "POST"
    app_key: str | None = None
    action: str | None = None


@dataclass(frozen=True)
class Decision:
    profile: str
    rule: Rule
    n: int  # the rule's match counter for this request (1 = first matching request)
    latency_ms: float | None

    @property
    def label(self) -> str:
        """`<profile>/<rule>`: the X-Captchala-Emulator-Fault header and the journal's `fault`."""
        return f"{self.profile}/{self.rule.name}"


def unit(seed: int, rule: str, n: int, purpose: str) -> float:
    """A uniform number in [0, 1) that depends only on its arguments."""
    digest = hashlib.sha256(f"{seed}\x1f{rule}\x1f{n}\x1f{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def matches(rule: Rule, facts: Facts) -> bool:
    m = rule.match
    if facts.endpoint not in m.endpoints:
        return False
    if m.methods is not None and facts.method.upper() not in m.methods:
        return False
    if m.app_key is not None and (facts.app_key is None or not fnmatchcase(facts.app_key, m.app_key)):
        return False
    return m.action is None or (facts.action is not None and fnmatchcase(facts.action, m.action))


def eligible(when: When, n: int) -> bool:
    """first / after / every for the n-th matching request (no randomness, no `times`)."""
    return ((when.first is None or n <= when.first) and (when.after is None or n > when.after)
            and (when.every is None or n % when.every == 0))


def eligible_count(when: When, n: int) -> int:
    """How many of the matching requests 1..n were eligible: the firing index without probability."""
    low = (when.after or 0) + 1
    high = min(n, when.first) if when.first is not None else n
    if high < low:
        return 0
    if when.every is not None:
        return high // when.every - (low - 1) // when.every
    return high - low + 1


def chance(when: When, seed: int, rule: str, n: int) -> bool:
    return when.probability is None or unit(seed, rule, n, "probability") < when.probability


@overload
def latency_ms(spec: Latency, seed: int, rule: str, n: int) -> float: ...
@overload
def latency_ms(spec: None, seed: int, rule: str, n: int) -> None: ...
def latency_ms(spec: Latency | None, seed: int, rule: str, n: int) -> float | None:
    """The delay for this request: fixed, uniform {min,max}, or lognormal {median,p99} capped at max."""
    if spec is None:
        return None
    if spec.kind == "fixed":
        return spec.fixed
    u = unit(seed, rule, n, "latency")
    if spec.kind == "uniform":
        return spec.min + u * (spec.max - spec.min)
    sigma = math.log(spec.p99 / spec.median) / Z99
    z = NormalDist().inv_cdf(min(max(u, 1e-12), 1 - 1e-12))
    return min(spec.max, spec.median * math.exp(sigma * z))


def decide(profile: Profile, seed: int, facts: Facts, next_count: Callable[[str], int],
           next_firing: Callable[[str], int]) -> Decision | None:
    """First rule (in file order) whose match and when both hold, or None.

    `next_count(rule)` atomically bumps and returns the rule's shared match counter;
    `next_firing(rule)` does the same for its firing counter (only used by `times` with
    `probability`). A rule that matches but does not fire lets the next rules try."""
    for rule in profile.rules:
        if not matches(rule, facts):
            continue
        n = next_count(rule.name)
        if fires(rule, seed, n, next_firing):
            return Decision(profile.name, rule, n, latency_ms(rule.effect.latency, seed, rule.name, n))
    return None


def fires(rule: Rule, seed: int, n: int, next_firing: Callable[[str], int]) -> bool:
    when = rule.when
    if not eligible(when, n) or not chance(when, seed, rule.name, n):
        return False
    if when.times is None:
        return True
    if when.counted_by_firing:
        return next_firing(rule.name) <= when.times
    return eligible_count(when, n) <= when.times
