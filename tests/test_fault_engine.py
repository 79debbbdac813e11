"""The fault engine is pure: decisions depend only on (seed, rule, n) and the request facts."""

from __future__ import annotations

import statistics
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.faults import engine
from emulator.faults.engine import Facts
from emulator.faults.profile import When, parse_profile

VALIDATE = Facts("validate", "POST", "demo_app", "login")


def profile(*rules, seed=None):
    doc = {"name": "p", "rules": list(rules)}
    if seed is not None:
        doc["seed"] = seed
    return parse_profile(doc, "test")


class Counters:
    """The store's shared counters, as plain dicts."""

    def __init__(self):
        self.matched: Counter[str] = Counter()
        self.fired: Counter[str] = Counter()

    def next_count(self, rule):
        self.matched[rule] += 1
        return self.matched[rule]

    def next_firing(self, rule):
        self.fired[rule] += 1
        return self.fired[rule]


def run(p, requests, seed=0):
    """The label of the rule that fired for each request (None when none did)."""
    c = Counters()
    out = []
    for facts in requests:
        d = engine.decide(p, seed, facts, c.next_count, c.next_firing)
        out.append(d.rule.name if d else None)
    return out


def test_unit_is_a_pure_function_of_its_arguments():
    assert engine.unit(1, "r", 5, "probability") == engine.unit(1, "r", 5, "probability")
    values = {engine.unit(s, r, n, p) for s in (0, 1) for r in ("a", "b") for n in (1, 2) for p in ("x", "y")}
    assert len(values) == 16 and all(0 <= v < 1 for v in values)


def test_probability_is_seeded_and_close_to_its_rate():
    p = profile({"name": "flaky", "match": {"endpoint": "validate"}, "when": {"probability": 0.3},
                 "effect": {"status": 503}})
    first = run(p, [VALIDATE] * 2000, seed=42)
    assert first == run(p, [VALIDATE] * 2000, seed=42)  # same seed, same sequence: same decisions
    assert first != run(p, [VALIDATE] * 2000, seed=43)
    assert 0.27 < first.count("flaky") / 2000 < 0.33


@pytest.mark.parametrize(("probability", "expected"), [(0, 0), (1, 500)])
def test_probability_zero_never_fires_and_one_always_does(probability, expected):
    p = profile({"name": "r", "when": {"probability": probability}, "effect": {"status": 500}})
    assert run(p, [VALIDATE] * 500).count("r") == expected


@pytest.mark.parametrize(("when", "fired"), [
    ({"first": 2}, [1, 2]),
    ({"after": 3}, [4, 5, 6, 7, 8, 9, 10]),
    ({"every": 3}, [3, 6, 9]),
    ({"times": 2}, [1, 2]),
    ({"after": 2, "every": 2, "times": 2}, [4, 6]),
    ({"first": 7, "after": 2, "every": 2}, [4, 6]),
])
def test_first_after_every_times(when, fired):
    p = profile({"name": "r", "when": when, "effect": {"status": 503}})
    decisions = run(p, [VALIDATE] * 10)
    assert [i + 1 for i, d in enumerate(decisions) if d] == fired


def test_times_with_probability_counts_firings_not_matches():
    p = profile({"name": "r", "when": {"probability": 0.5, "times": 3}, "effect": {"status": 503}}, seed=1)
    c = Counters()
    decisions = [engine.decide(p, 1, VALIDATE, c.next_count, c.next_firing) for _ in range(100)]
    assert sum(d is not None for d in decisions) == 3
    assert c.fired["r"] > 3  # later eligible draws still counted, and refused


@given(first=st.none() | st.integers(1, 30), after=st.none() | st.integers(0, 30),
       every=st.none() | st.integers(1, 7), n=st.integers(1, 60))
def test_eligible_count_is_the_number_of_eligible_requests_so_far(first, after, every, n):
    when = When(first=first, after=after, every=every)
    assert engine.eligible_count(when, n) == sum(engine.eligible(when, k) for k in range(1, n + 1))


def test_first_matching_rule_wins_and_a_rule_that_does_not_fire_lets_the_next_try():
    p = profile(
        {"name": "issue-only", "match": {"endpoint": "issue"}, "effect": {"status": 500}},
        {"name": "first-two", "match": {"endpoint": "validate"}, "when": {"first": 2}, "effect": {"status": 503}},
        {"name": "rest", "match": {"endpoint": ["validate", "issue"]}, "effect": {"latency_ms": 5}},
    )
    issue = Facts("issue")
    assert run(p, [VALIDATE, issue, VALIDATE, VALIDATE, issue]) == [
        "first-two", "issue-only", "first-two", "rest", "issue-only"]


def test_match_on_app_key_and_action_globs_and_method():
    p = profile({"name": "r", "match": {"app_key": "demo_*", "action": "log*", "method": "post"},
                 "effect": {"latency_ms": 1}})
    assert run(p, [VALIDATE, Facts("validate", "POST", "auto_pass_app", "login"),
                   Facts("validate", "POST", "demo_app", "pay"), Facts("validate", "GET", "demo_app", "login"),
                   Facts("validate", "POST", None, None)]) == ["r", None, None, None, None]


def test_the_counter_only_counts_requests_that_reach_the_rule():
    p = profile({"name": "a", "when": {"first": 1}, "effect": {"status": 500}},
                {"name": "b", "when": {"every": 2}, "effect": {"status": 503}})
    # a takes request 1; b then sees requests 2, 3, 4, 5 as its n = 1, 2, 3, 4
    assert run(p, [VALIDATE] * 5) == ["a", None, "b", None, "b"]


def test_decisions_depend_on_n_not_on_which_worker_asks():
    """Four 'workers' share the counter in any interleaving: the n-th request's fate is fixed."""
    p = profile({"name": "x", "when": {"probability": 0.4}, "effect": {"latency_ms": {"min": 1, "max": 100}}},
                seed=9)
    c = Counters()
    by_n = {}
    for _ in range(200):  # whoever asks, the counter hands out the next n
        d = engine.decide(p, 9, VALIDATE, c.next_count, c.next_firing)
        if d:
            by_n[d.n] = d.latency_ms
    again = {n: engine.latency_ms(p.rules[0].effect.latency, 9, "x", n) for n in by_n}
    assert by_n == again
    expected = [n for n in range(1, 201) if engine.unit(9, "x", n, "probability") < 0.4]
    assert sorted(by_n) == expected


def test_latency_fixed_uniform_and_lognormal():
    fixed, uniform, lognormal = profile(
        {"name": "f", "effect": {"latency_ms": 250}},
        {"name": "u", "effect": {"latency_ms": {"min": 100, "max": 200}}},
        {"name": "l", "effect": {"latency_ms": {"median": 120, "p99": 900, "max": 3000}}},
    ).rules
    assert engine.latency_ms(fixed.effect.latency, 0, "f", 1) == 250
    us = [engine.latency_ms(uniform.effect.latency, 0, "u", n) for n in range(1, 2001)]
    assert min(us) >= 100 and max(us) <= 200 and 145 < statistics.mean(us) < 155
    ls = sorted(engine.latency_ms(lognormal.effect.latency, 0, "l", n) for n in range(1, 20001))
    assert 110 < ls[len(ls) // 2] < 130  # the median
    assert 800 < ls[int(len(ls) * 0.99)] < 1000  # the p99
    assert max(ls) <= 3000
    assert ls == sorted(engine.latency_ms(lognormal.effect.latency, 0, "l", n) for n in range(1, 20001))


def test_a_degenerate_lognormal_is_its_median():
    [rule] = profile({"name": "l", "effect": {"latency_ms": {"median": 50, "p99": 50, "max": 50}}}).rules
    assert {round(engine.latency_ms(rule.effect.latency, 3, "l", n), 9) for n in range(1, 50)} == {50}


def test_decision_label_is_profile_slash_rule():
    p = profile({"name": "outage", "effect": {"status": 503}})
    c = Counters()
    d = engine.decide(p, 0, VALIDATE, c.next_count, c.next_firing)
    assert (d.label, d.n, d.latency_ms) == ("p/outage", 1, None)
