"""Property: the fault-profile loader never crashes. Any document — hypothesis-built mappings
close to the schema, YAML dumps of them, mangled YAML and plain text — either loads into a
Profile or is refused with a ProfileError (a ConfigError) naming the source and the key path."""

from __future__ import annotations

import copy

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.errors import ConfigError
from emulator.faults.profile import ENDPOINTS, Profile, ProfileError, load_yaml, parse_profile

SOURCE = "fuzz/profile.yaml"
TOP_KEYS = ("name", "description", "seed", "ttl_s", "rules")


def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


scalars = (st.none() | st.booleans() | st.integers(min_value=-10**6, max_value=10**6)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20)
           | st.sampled_from(list(ENDPOINTS) + ["reset", "hang", "html", "json", "token_expired", "rate_limit_exceeded",
                                                "demo_*", "POST", "slow_body", "truncated_body", "invalid_token"]))
anything = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(scalars.filter(lambda v: v.__hash__ is not None), inner, max_size=3),
                        max_leaves=8)
numbers = st.integers(min_value=-5, max_value=5000) | st.floats(min_value=-10, max_value=1e6)


def near(keys: dict) -> st.SearchStrategy:
    """Mappings with some of the schema's keys (right or wrong values) and now and then a stray key."""
    right_mostly = {k: st.one_of(v, v, v, v, v, anything) for k, v in keys.items()}
    return st.fixed_dictionaries({}, optional=right_mostly).flatmap(
        lambda d: st.dictionaries(st.text(max_size=8), anything, max_size=1).map(lambda extra: {**extra, **d})
        if len(d) % 5 == 4 else st.just(d))


latency = numbers | near({"min": numbers, "max": numbers, "median": numbers, "p99": numbers})
effect = near({"latency_ms": latency, "status": st.integers(100, 700),
               "body": st.sampled_from(["json", "html", "empty", "x"]),
               "headers": st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=2),
               "error": st.sampled_from(["rate_limit_exceeded", "invalid_app_key", "bogus"]),
               "token_result": st.sampled_from(["token_expired", "token_consumed", "valid"]),
               "connection": st.sampled_from(["reset", "hang", "slow_body"])
               | near({"kind": st.just("hang"), "max_s": numbers}),
               "degraded": st.booleans(), "main_down": st.booleans(), "clock_skew_s": numbers,
               "retry_after": numbers, "processed": st.booleans()})
when = near({"probability": st.floats(-1, 2), "first": numbers, "after": numbers, "every": numbers, "times": numbers})
match = near({"endpoint": st.sampled_from(ENDPOINTS) | st.lists(st.sampled_from(ENDPOINTS), max_size=3),
              "app_key": st.text(max_size=10), "action": st.text(max_size=10),
              "method": st.sampled_from(["POST", "get", "X"])})
rule = near({"effect": st.just({"latency_ms": 5}) | effect,
             "name": st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True), "match": match, "when": when, })
names = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)
good_rule = st.fixed_dictionaries(
    {"name": names, "effect": st.sampled_from([{"latency_ms": 5}, {"latency_ms": {"min": 1, "max": 9}},
                                               {"latency_ms": {"median": 10, "p99": 50, "max": 90}},
                                               {"status": 503, "body": "html"}, {"error": "rate_limit_exceeded"},
                                               {"token_result": "token_expired"}, {"connection": "reset"},
                                               {"latency_ms": 3, "error": "rate_limit_exceeded"}])},
    optional={"match": st.sampled_from([{"endpoint": "validate"}, {"endpoint": ["validate", "issue"]},
                                        {"app_key": "demo_*", "action": "login"}]),
              "when": st.sampled_from([{"probability": 0.3}, {"first": 2}, {"every": 3}, {"times": 1}, {"after": 4}])})
good_profiles = st.fixed_dictionaries(
    {"rules": st.lists(good_rule, min_size=1, max_size=3, unique_by=lambda r: r["name"])},
    optional={"name": names, "seed": st.integers(0, 99), "ttl_s": st.floats(1, 1000), "description": st.just("d")})


def corrupt(doc, garbage, n: int):
    """Replace the n-th node (depth first) of a good profile by garbage: deep, targeted damage."""
    doc, nodes = copy.deepcopy(doc), []  # never damage the strategies' shared examples

    def walk(node, parent, key):
        nodes.append((parent, key))
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, child in list(children):
            walk(child, node, k)

    walk(doc, None, None)
    parent, key = nodes[n % len(nodes)]
    if parent is None:
        return garbage
    parent[key] = garbage
    return doc


damaged = st.builds(corrupt, good_profiles, anything, st.integers(0, 10_000))
profiles = good_profiles | damaged | damaged | near({
    "name": st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True), "seed": st.integers(0, 99),
    "ttl_s": numbers, "description": st.text(max_size=20), "rules": st.lists(rule, min_size=1, max_size=3)}) | anything


def check(load, doc=None) -> Profile | None:
    """Either a Profile, or a ProfileError naming the source and a key path rooted in the document."""
    try:
        profile = load()
    except ProfileError as exc:
        assert isinstance(exc, ConfigError)
        assert exc.source == SOURCE and str(exc).startswith(SOURCE + ": "), str(exc)
        assert isinstance(exc.path, str) and exc.problem.strip(), str(exc)
        # a key that is empty, unprintable or padded is shown quoted (repr) in the path
        roots = TOP_KEYS + (tuple(r for k in doc for r in (str(k), repr(k))) if isinstance(doc, dict) else ())
        assert exc.path == "" or exc.path.startswith(roots), f"path {exc.path!r} is not in the document ({exc})"
        return None
    assert isinstance(profile, Profile) and profile.rules
    return profile


def parsed(text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


@fuzz(400)
@given(doc=profiles)
def test_any_mapping_loads_or_is_refused_with_a_key_path(doc):
    check(lambda: parse_profile(doc, SOURCE), doc)


@fuzz(250)
@given(doc=profiles, cut=st.integers(0, 400),
       junk=st.sampled_from(["", ":", "- [", "{", "\t", "&a *a", "!!python/object:os.system x", "%"]))
def test_yaml_text_loads_or_is_refused_with_a_key_path(doc, cut, junk):
    text = yaml.safe_dump(doc, default_flow_style=bool(cut % 2), allow_unicode=True)
    mangled = text[:cut] + junk + text[cut:] if junk else text
    check(lambda: load_yaml(mangled, SOURCE), parsed(mangled))


@fuzz(150)
@given(text=st.text(max_size=200))
def test_arbitrary_text_loads_or_is_refused(text):
    check(lambda: load_yaml(text, SOURCE), parsed(text))


def test_the_fuzzer_reaches_valid_profiles_too():
    """The strategies are not all garbage: a fair share of the same draws loads, so the
    property covers the accepting paths of the loader as well as the refusing ones."""
    loaded = []

    @fuzz(200)
    @given(doc=profiles)
    def draw(doc):
        loaded.append(check(lambda: parse_profile(doc, SOURCE), doc) is not None)

    draw()
    assert sum(loaded) >= len(loaded) // 20, f"only {sum(loaded)} of {len(loaded)} draws were valid profiles"
