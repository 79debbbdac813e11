"""Issue 13 item 12 (the data the dashboard shows): the profile description carries each rule's
firings beside its matches, and a refused reload of the watched file — seen by every worker —
until a good edit or another activation replaces it."""

from __future__ import annotations

import os

from emulator.faults import loader
from emulator.faults.engine import Facts
from emulator.faults.state import FaultState
from emulator.store.memory import MemoryStore
from tests.test_fault_state import Tick

VALIDATE = Facts("validate", "POST", "demo_app", "login")


def test_each_rule_says_how_often_it_fired():
    state = FaultState(MemoryStore())
    state.start("flaky-validate", 0)
    for _ in range(20):
        state.decide("validate", lambda: VALIDATE, lambda: 0.0)
    rule = state.describe(lambda: 0.0)["rules"][0]
    assert rule["matched"] == 20 and 0 < rule["fired"] < 20


def test_a_refused_reload_is_described_by_every_worker_until_a_good_edit(tmp_path):
    path = tmp_path / "chaos.yaml"
    path.write_text("rules: [{name: one, effect: {status: 500}}]")
    store, tick = MemoryStore(), Tick()
    workers = [FaultState(store, monotonic=tick) for _ in range(2)]
    workers[0].activate_loaded(loader.load(str(path)), 0)
    now = lambda: 0.0  # noqa: E731

    def edit(text: str, seconds: int) -> None:
        stat = path.stat()
        path.write_text(text)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + seconds * 1_000_000_000))
        tick.t += 1.0

    assert workers[1].describe(now)["reload_refused"] is None
    edit("rules: [{name: two, effect: {status: 9999}}]", 1)
    workers[0].current(now)
    refused = workers[1].describe(now)["reload_refused"]
    assert refused["file"] == str(path) and "rules[0].effect.status" in refused["problem"]
    assert workers[1].describe(now)["rules"][0]["name"] == "one"
    edit("rules: [{name: three, effect: {status: 502}}]", 2)
    workers[0].current(now)
    described = workers[1].describe(now)
    assert described["reload_refused"] is None and described["rules"][0]["name"] == "three"
