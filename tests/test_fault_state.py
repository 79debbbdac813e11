"""The active profile lives in the store: cheap hot path, per-version cache, TTL by the virtual
clock, counters that restart with each activation, and a watched file that reloads itself."""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest

from emulator.faults import loader
from emulator.faults.engine import Facts
from emulator.faults.profile import ProfileError, parse_profile
from emulator.faults.state import FaultState
from emulator.store.memory import MemoryStore

VALIDATE = Facts("validate", "POST", "demo_app", "login")
FIRST_TWO: dict[str, Any] = {"name": "outage", "rules": [{"name": "first-two", "match": {"endpoint": "validate"},
                                          "when": {"first": 2}, "effect": {"status": 503}}]}


class CountingStore(MemoryStore):
    """Counts every store call, to prove the hot path's cost."""

    def __init__(self):
        super().__init__()
        self.calls: list[str] = []

    def get(self, key):
        self.calls.append(f"get {key}")
        return super().get(key)

    def incr(self, key, amount=1, **kw):
        self.calls.append(f"incr {key}")
        return super().incr(key, amount, **kw)


class Tick:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def fired(state, n, now=lambda: 1000.0):
    return [bool(state.decide("validate", lambda: VALIDATE, now)) for _ in range(n)]


def test_with_no_profile_a_request_costs_one_store_read():
    store = CountingStore()
    state = FaultState(store)
    assert state.decide("validate", lambda: pytest.fail("facts are not needed"),
                        lambda: pytest.fail("no clock")) is None
    assert store.calls == ["get fault_profile_version"]


def test_an_active_profile_is_parsed_once_per_process_and_version():
    store = CountingStore()
    writer, reader = FaultState(store), FaultState(store)  # two workers on one store
    writer.activate(parse_profile(FIRST_TWO, "test"), source="test", now=0)
    store.calls.clear()
    assert fired(reader, 3) == [True, True, False]
    assert store.calls.count("get fault_profile") == 1  # the document, read once
    assert store.calls.count("get fault_profile_version") == 3
    assert len([c for c in store.calls if c.startswith("incr fault:outage:") and not c.endswith(":hits")]) == 3
    assert len([c for c in store.calls if c.endswith(":hits")]) == 2  # only a firing counts its firing


def test_counters_are_shared_between_workers_and_restart_with_each_activation():
    store = MemoryStore()
    a, b = FaultState(store), FaultState(store)
    a.activate(parse_profile(FIRST_TWO, "test"), source="test", now=0)
    assert [fired(a, 1)[0], fired(b, 1)[0], fired(a, 1)[0], fired(b, 1)[0]] == [True, True, False, False]
    b.activate(parse_profile(FIRST_TWO, "test"), source="test", now=0)  # the same profile again
    assert fired(a, 3) == [True, True, False]


def test_a_full_reset_clears_fault_counters_and_a_scoped_one_keeps_them():
    store = MemoryStore()
    state = FaultState(store)
    state.activate(parse_profile(FIRST_TWO, "test"), source="test", now=0)
    assert fired(state, 3) == [True, True, False]
    store.reset("demo_app")
    assert fired(state, 1) == [False]
    store.reset()
    assert fired(state, 3) == [True, True, False]


def test_ttl_switches_the_profile_off_by_the_virtual_clock():
    state = FaultState(MemoryStore())
    doc = {**FIRST_TWO, "ttl_s": 600, "rules": [{**FIRST_TWO["rules"][0], "when": {}}]}
    state.activate(parse_profile(doc, "test"), source="test", now=1000.0)
    assert fired(state, 1, now=lambda: 1599.9) == [True]
    assert state.active_name(lambda: 1599.9) == "outage"
    assert fired(state, 1, now=lambda: 1600.0) == [False]
    assert state.active_name(lambda: 1600.0) is None
    described = state.describe(lambda: 1600.0)
    assert described["active"] is False and described["expired"] is True and described["expires_at"] == 1600.0


def test_deactivate_and_adopt():
    store = MemoryStore()
    state = FaultState(store)
    assert state.adopt("main-down", 0).profile.name == "main-down"  # a fresh store takes --profile
    state.deactivate()
    assert state.adopt("main-down", 0) is None  # a store that has decided keeps its decision
    assert state.active_name(lambda: 0) is None
    with pytest.raises(ProfileError):
        FaultState(MemoryStore()).start("no-such-profile", 0)


def test_seed_defaults_to_the_setting_and_a_profile_seed_wins():
    state = FaultState(MemoryStore(), default_seed=5)
    assert state.activate(parse_profile(FIRST_TWO, "t"), source="t", now=0).seed == 5
    assert state.activate(parse_profile({**FIRST_TWO, "seed": 9}, "t"), source="t", now=0).seed == 9


def test_a_watched_file_reloads_on_change_and_a_broken_edit_keeps_the_old_profile(tmp_path, caplog):
    path = tmp_path / "chaos.yaml"
    path.write_text("rules: [{name: one, effect: {status: 500}}]")
    store, tick = MemoryStore(), Tick()
    workers = [FaultState(store, monotonic=tick) for _ in range(3)]
    workers[0].activate_loaded(loader.load(str(path)), 0)
    now = lambda: 0.0  # noqa: E731

    def edit(text: str) -> None:
        stat = path.stat()
        path.write_text(text)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        tick.t += 1.0  # a second passes: every worker may stat again

    edit("rules: [{name: two, effect: {status: 502}}]")
    assert {w.current(now).profile.rules[0].name for w in workers} <= {"one", "two"}
    assert {w.current(now).profile.rules[0].name for w in workers} == {"two"}
    with caplog.at_level(logging.WARNING, "captchala_emulator.faults"):
        edit("rules: [{name: three, effect: {latency_ms: {median: 9, p99: 1, max: 10}}}]")
        assert {w.current(now).profile.rules[0].name for w in workers} == {"two"}
        assert {w.current(now).profile.rules[0].name for w in workers} == {"two"}
    broken = [r.getMessage() for r in caplog.records if "invalid" in r.getMessage()]
    assert len(broken) == 1  # one worker claims the edit, and logs it once
    assert "rules[0].effect.latency_ms.p99: must be >= median (9)" in broken[0]
    edit("rules: [{name: four, effect: {status: 504}}]")
    assert {w.current(now).profile.rules[0].name for w in workers} <= {"two", "four"}
    assert {w.current(now).profile.rules[0].name for w in workers} == {"four"}


def test_a_file_is_only_checked_once_a_second_per_process(tmp_path):
    path = tmp_path / "chaos.yaml"
    path.write_text("rules: [{name: one, effect: {status: 500}}]")
    tick = Tick()
    state = FaultState(MemoryStore(), monotonic=tick)
    state.activate_loaded(loader.load(str(path)), 0)
    stat = path.stat()
    path.write_text("rules: [{name: two, effect: {status: 500}}]")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    state.current(lambda: 0)  # the first look stats at once ...
    assert state.current(lambda: 0).profile.rules[0].name == "two"
    path.write_text("rules: [{name: three, effect: {status: 500}}]")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 9_000_000_000))
    assert state.current(lambda: 0).profile.rules[0].name == "two"  # ... the next only a second later
    tick.t += 1.0
    assert state.current(lambda: 0).profile.rules[0].name == "three"
