"""Profile parsing is strict: every problem names the source, the key path and what is wrong."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from emulator.cli import main
from emulator.errors import ErrorCode
from emulator.faults import loader
from emulator.faults.profile import ENDPOINTS, MAIN, ProfileError, load_yaml, parse_profile

CONTRACT_SKETCH = """
name: flaky-validate
seed: 42
ttl_s: 600
rules:
  - name: slow
    match: {endpoint: validate, app_key: "demo_*", action: login}
    when: {probability: 0.3}
    effect: {latency_ms: {median: 120, p99: 900, max: 3000}}
  - name: outage
    match: {endpoint: [validate, issue]}
    when: {first: 2}
    effect: {status: 503, body: html}
"""


def test_the_contract_sketch_parses_into_frozen_rules():
    p = load_yaml(CONTRACT_SKETCH, "sketch.yaml")
    assert (p.name, p.seed, p.ttl_s) == ("flaky-validate", 42, 600.0)
    slow, outage = p.rules
    assert slow.match.endpoints == ("validate",) and slow.match.app_key == "demo_*" and slow.match.action == "login"
    assert slow.when.probability == 0.3
    assert (slow.effect.latency.kind, slow.effect.latency.median, slow.effect.latency.p99) == ("lognormal", 120, 900)
    assert outage.match.endpoints == ("validate", "issue") and outage.when.first == 2
    assert (outage.effect.status, outage.effect.body) == (503, "html")
    with pytest.raises(AttributeError):
        outage.effect.status = 200  # type: ignore[misc]  # frozen


def test_every_effect_key_in_its_longest_form():
    p = parse_profile({"name": "all", "rules": [
        {"name": "a", "match": {"endpoint": "issue", "method": ["post", "PUT"]},
         "effect": {"latency_ms": {"min": 5, "max": 10}, "processed": True, "status": 429, "body": "slow down",
                    "headers": {"X-Why": "test", "X-Count": 3}, "retry_after": 7}},
        {"name": "b", "effect": {"error": "rate_limit_exceeded", "retry_after": 2}},
        {"name": "c", "effect": {"token_result": "binding_mismatch", "clock_skew_s": -30}},
        {"name": "d", "effect": {"connection": {"kind": "slow_body", "chunks": 3, "chunk_delay_ms": 50}}},
        {"name": "e", "effect": {"connection": {"kind": "hang", "max_s": 2.5}}},
        {"name": "f", "effect": {"connection": {"kind": "truncated_body", "fraction": 0.25}}},
        {"name": "g", "effect": {"degraded": True}},
        {"name": "h", "effect": {"main_down": True, "latency_ms": 40}},
        {"name": "i", "when": {"after": 1, "first": 9, "every": 2, "times": 3, "probability": 1},
         "effect": {"latency_ms": 1}},
    ]}, "inline")
    a, b, c, d, e, f, g, h, i = p.rules
    assert a.match.methods == ("POST", "PUT") and a.effect.headers == (("X-Why", "test"), ("X-Count", "3"))
    assert a.effect.latency.kind == "uniform" and a.effect.processed and a.effect.body == "slow down"
    assert b.effect.error is ErrorCode.RATE_LIMIT_EXCEEDED and "loader" not in b.match.endpoints
    assert c.effect.token_result is ErrorCode.BINDING_MISMATCH
    assert c.match.endpoints == ("validate", "backup_validate")  # the effect's own endpoints by default
    assert (d.effect.connection.chunks, d.effect.connection.chunk_delay_ms) == (3, 50)
    assert e.effect.connection.max_s == 2.5 and f.effect.connection.fraction == 0.25
    assert g.match.endpoints == ("challenge_solve",)
    assert h.match.endpoints == MAIN
    assert i.match.endpoints == ENDPOINTS and i.when.counted_by_firing


BAD = [
    ("rules: [", "", "invalid YAML (line 1, column 9)"),
    ("", "", "expected a mapping, got nothing (null)"),
    ("rules: []", "rules", "required: a non-empty list"),
    ("rulez: []", "rulez", "unknown key (known: description, name, rules, seed, ttl_s)"),
    ("name: a/b\nrules: [{name: r, effect: {latency_ms: 1}}]", "name", "no '/' or ':'"),
    ("seed: one\nrules: [{name: r, effect: {latency_ms: 1}}]", "seed", "expected an integer, got a string"),
    ("ttl_s: 0\nrules: [{name: r, effect: {latency_ms: 1}}]", "ttl_s", "must be > 0"),
    ("rules: [{effect: {latency_ms: 1}}]", "rules[0].name", "required"),
    ("rules: [{name: r}]", "rules[0].effect", "required"),
    ("rules: [{name: r, effect: {}}]", "rules[0].effect", "empty"),
    ("rules: [{name: r, effect: {latency_ms: 1}}, {name: r, effect: {latency_ms: 2}}]", "rules[1].name",
     "duplicate rule name 'r' (also rules[0])"),
    ("rules: [{name: r, effect: {latency_ms: 1}}, {name: s, effect: {latency_ms: {median: 120, p99: 90, max: 3000}}}]",
     "rules[1].effect.latency_ms.p99", "must be >= median (120)"),
    ("rules: [{name: r, effect: {latency_ms: {median: 120, p99: 900, max: 300}}}]", "rules[0].effect.latency_ms.max",
     "must be >= p99 (900)"),
    ("rules: [{name: r, effect: {latency_ms: {median: 0, p99: 9, max: 30}}}]", "rules[0].effect.latency_ms.median",
     "must be > 0"),
    ("rules: [{name: r, effect: {latency_ms: {min: 9, max: 3}}}]",
     "rules[0].effect.latency_ms.max", "must be >= min (9)"),
    ("rules: [{name: r, effect: {latency_ms: {median: 9}}}]", "rules[0].effect.latency_ms.max", "required"),
    ("rules: [{name: r, effect: {latency_ms: {p95: 9}}}]", "rules[0].effect.latency_ms.p95", "unknown key"),
    ("rules: [{name: r, effect: {latency_ms: -1}}]", "rules[0].effect.latency_ms", "must be >= 0"),
    ("rules: [{name: r, effect: {latency_ms: fast}}]", "rules[0].effect.latency_ms", "expected a number, got a string"),
    ("rules: [{name: r, effect: {latency_ms: true}}]",
     "rules[0].effect.latency_ms", "expected a number, got a boolean"),
    ("rules: [{name: r, effect: {status: 700}}]", "rules[0].effect.status", "must be <= 599"),
    ("rules: [{name: r, effect: {status: 101}}]", "rules[0].effect.status", "must be >= 200"),
    ("rules: [{name: r, effect: {status: 200, headers: {Content-Length: 9}}}]",
     "rules[0].effect.headers.Content-Length", "use connection"),
    ("rules: [{name: r, effect: {status: '503'}}]", "rules[0].effect.status", "expected an integer, got a string"),
    ("rules: [{name: r, effect: {body: html}}]", "rules[0].effect.body", "needs status"),
    ("rules: [{name: r, effect: {status: 503, error: internal_error}}]",
     "rules[0].effect.error", "one outcome per rule"),
    ("rules: [{name: r, effect: {error: nope}}]", "rules[0].effect.error", "unknown error code 'nope'"),
    ("rules: [{name: r, effect: {error: token_expired}}]", "rules[0].effect.error", "use token_result"),
    ("rules: [{name: r, effect: {token_result: app_disabled}}]", "rules[0].effect.token_result",
     "'app_disabled' is not one of token_expired, token_consumed, invalid_token, binding_mismatch"),
    ("rules: [{name: r, match: {endpoint: issue}, effect: {token_result: token_expired}}]", "rules[0].match.endpoint",
     "effect.token_result cannot act on issue (it applies to validate, backup_validate)"),
    ("rules: [{name: r, match: {endpoint: [validate, loader]}, effect: {error: invalid_request}}]",
     "rules[0].match.endpoint[1]", "effect.error cannot act on loader"),
    ("rules: [{name: r, match: {endpoint: backup_validate}, effect: {main_down: true}}]", "rules[0].match.endpoint",
     "effect.main_down cannot act on backup_validate"),
    ("rules: [{name: r, match: {endpoint: verify}, effect: {latency_ms: 1}}]", "rules[0].match.endpoint",
     "'verify' is not one of validate, backup_validate"),
    ("rules: [{name: r, match: {endpoint: []}, effect: {latency_ms: 1}}]", "rules[0].match.endpoint", "empty list"),
    ("rules: [{name: r, match: {path: /v1}, effect: {latency_ms: 1}}]", "rules[0].match.path", "unknown key"),
    ("rules: [{name: r, match: {method: FETCH}, effect: {latency_ms: 1}}]", "rules[0].match.method", "is not one of"),
    ("rules: [{name: r, when: {probability: 1.5}, effect: {latency_ms: 1}}]",
     "rules[0].when.probability", "must be <= 1"),
    ("rules: [{name: r, when: {first: 0}, effect: {latency_ms: 1}}]", "rules[0].when.first", "must be >= 1"),
    ("rules: [{name: r, when: {first: 2, after: 2}, effect: {latency_ms: 1}}]", "rules[0].when.after",
     "must be < first (2): the rule could never fire"),
    ("rules: [{name: r, when: {first: 2, every: 3}, effect: {latency_ms: 1}}]", "rules[0].when.every", "never fire"),
    ("rules: [{name: r, when: {times: 1.5}, effect: {latency_ms: 1}}]", "rules[0].when.times", "expected an integer"),
    ("rules: [{name: r, when: [first], effect: {latency_ms: 1}}]", "rules[0].when", "expected a mapping, got a list"),
    ("rules: [{name: r, effect: {connection: teleport}}]",
     "rules[0].effect.connection", "'teleport' is not one of reset"),
    ("rules: [{name: r, effect: {connection: {kind: reset, max_s: 3}}}]", "rules[0].effect.connection.max_s",
     "only for kind hang"),
    ("rules: [{name: r, effect: {connection: {kind: hang, max_s: 0}}}]",
     "rules[0].effect.connection.max_s", "must be > 0"),
    ("rules: [{name: r, effect: {connection: {kind: slow_body, chunks: 1}}}]", "rules[0].effect.connection.chunks",
     "must be >= 2"),
    ("rules: [{name: r, effect: {connection: {kind: slow_body, chunks: 1000, chunk_delay_ms: 60000}}}]",
     "rules[0].effect.connection.chunk_delay_ms", "must stay within 600 s"),
    ("rules: [{name: r, effect: {connection: {kind: truncated_body, fraction: 1}}}]",
     "rules[0].effect.connection.fraction", "must be < 1"),
    ("rules: [{name: r, effect: {connection: reset, status: 500}}]",
     "rules[0].effect.connection", "one outcome per rule"),
    ("rules: [{name: r, effect: {degraded: false}}]", "rules[0].effect.degraded", "only true means something"),
    ("rules: [{name: r, effect: {main_down: yes please}}]", "rules[0].effect.main_down", "expected true or false"),
    ("rules: [{name: r, effect: {status: 503, headers: {Bad Name: x}}}]", "rules[0].effect.headers.Bad Name",
     "not a valid header name"),
    ("rules: [{name: r, effect: {connection: hang, headers: {X-A: b}}}]", "rules[0].effect.headers",
     "needs status, error or main_down"),
    ("rules: [{name: r, effect: {retry_after: 3}}]", "rules[0].effect.retry_after", "needs status or error"),
    ("rules: [{name: r, effect: {processed: true, token_result: token_expired}}]", "rules[0].effect.processed",
     "token_result always acts on the processed request"),
    ("rules: [{name: r, effect: {processed: true}}]", "rules[0].effect.processed", "needs latency_ms or an outcome"),
    ("rules: [{name: r, effect: {clock_skew_s: 1000000000000}}]", "rules[0].effect.clock_skew_s", "must be <="),
    # integers past a float's range: compared exactly, never converted into an OverflowError
    ("rules: [{name: r, effect: {latency_ms: " + "9" * 400 + "}}]", "rules[0].effect.latency_ms", "must be <="),
    ("rules: [{name: r, effect: {clock_skew_s: -" + "9" * 400 + "}}]", "rules[0].effect.clock_skew_s", "must be >="),
    ("rules: [{name: r, when: {probability: " + "9" * 400 + "}, effect: {status: 500}}]", "rules[0].when.probability",
     "must be <="),
    ("ttl_s: " + "9" * 400 + "\nrules: []", "ttl_s", "must be <="),
    # every request is matched against every rule: a bound keeps a profile from slowing each one down
    ("rules: [" + ", ".join(f"{{name: r{i}, effect: {{status: 500}}}}" for i in range(101)) + "]", "rules",
     "at most 100 rules"),
]


@pytest.mark.parametrize(("text", "path", "problem"), BAD, ids=[b[1] or b[2][:20] for b in BAD])
def test_a_bad_profile_is_refused_with_source_key_path_and_problem(text, path, problem):
    with pytest.raises(ProfileError) as caught:
        load_yaml(text, "profiles/x.yaml")
    err = caught.value
    assert (err.source, err.path) == ("profiles/x.yaml", path)
    assert problem in err.problem
    assert str(err).startswith(f"profiles/x.yaml: {path}: " if path else "profiles/x.yaml: ")


def test_the_file_name_is_the_default_profile_name(tmp_path):
    path = tmp_path / "my-chaos.yaml"
    path.write_text("rules: [{name: r, effect: {latency_ms: 5}}]")
    loaded = loader.load(str(path))
    assert loaded.profile.name == "my-chaos" and loaded.file == str(path) and loaded.mtime_ns


def test_loader_resolves_built_in_names_and_refuses_unknown_ones():
    assert "flaky-validate" in loader.builtin_names()
    assert loader.load("flaky-validate").profile.name == "flaky-validate"
    with pytest.raises(loader.UnknownProfile, match="no built-in profile with this name") as caught:
        loader.load("no-such-profile")
    assert "flaky-validate" in str(caught.value)
    with pytest.raises(loader.UnknownProfile, match="no such file"):
        loader.load("missing/dir/profile.yaml")


def test_every_built_in_profile_says_what_it_reproduces():
    for name in loader.builtin_names():
        text = loader.builtin_path(name).read_text()
        assert text.startswith("# "), f"{name}.yaml needs a header comment saying what it reproduces"
        assert loader.describe_builtin(name)
        assert load_yaml(text, name).name == name, "the name inside must match the file name"


def test_check_profile_accepts_good_files_and_names():
    files = [str(loader.builtin_path(n)) for n in loader.builtin_names()]
    result = CliRunner().invoke(main, ["check-profile", *files, "main-down"])
    assert result.exit_code == 0, result.output
    assert result.output.count(": ok (profile ") == len(files) + 1


def test_check_profile_exits_2_with_file_key_path_and_problem(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("rules: [{name: r, effect: {latency_ms: 5}}]")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: r\n  - name: s\n    effect: {latency_ms: {median: 120, p99: 90, max: 3000}}\n")
    result = CliRunner().invoke(main, ["check-profile", str(good), str(bad)])
    assert result.exit_code == 2
    assert f"{good}: ok" in result.stdout
    assert f"{bad}: rules[0].effect: required" in result.stderr


def test_unprintable_or_empty_keys_are_quoted_in_the_key_path():
    from emulator.faults.profile import load_yaml
    from emulator.faults.reader import ProfileError

    for text, shown in (('"\\r": 1', "'\\r'"), ('"": 1', "''"), ("bogus: 1", "bogus")):
        with pytest.raises(ProfileError) as exc:
            load_yaml(text, "f.yaml")
        assert str(exc.value).startswith(f"f.yaml: {shown}: unknown key")
