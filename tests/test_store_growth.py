"""Nothing grows without bound: fault-rule counters and watched-file reload claims go with a
profile switch, a reset and the janitor's purge; over 20 000 requests with profile switches the
store's row counts stay flat (in-process app on SQLite, real time injected)."""

from __future__ import annotations

import os
import sqlite3
from typing import cast

import pytest

from emulator.domain.janitor import Janitor
from emulator.faults import loader
from emulator.faults.engine import Facts
from emulator.faults.profile import parse_profile
from emulator.faults.state import FaultState
from emulator.store import open_store
from emulator.store.sqlite import SQLiteStore
from tests.conftest import DEMO

VALIDATE = Facts("validate", "POST", "demo_app", "login")


def counting_profile(name: str) -> dict:
    return {"name": name, "rules": [
        {"name": "every-third", "match": {"endpoint": "validate"}, "when": {"every": 3}, "effect": {"status": 503}},
        {"name": "late", "match": {"endpoint": "validate"}, "when": {"after": 1000}, "effect": {"status": 502}}]}


def rows(path: str) -> dict[str, int]:
    """Rows per table, read from the file; the journal's entries are counted in its ring file."""
    with sqlite3.connect(path) as conn:
        counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                  for t in ("kv", "counters", "consumed", "uses", "journal")}
    reader = SQLiteStore(f"sqlite:///{path}", path)
    try:
        counts["journal"] += reader.stats()["journal"]
    finally:
        reader.close()
    return counts


def test_a_profile_switch_drops_the_previous_activations_counters(tmp_path):
    store = cast(SQLiteStore, open_store(f"sqlite:///{tmp_path / 's.db'}"))
    state = FaultState(store)
    for n in range(50):
        state.activate(parse_profile(counting_profile(f"p{n}"), "t"), source="t", now=0)
        for _ in range(5):
            state.decide("validate", lambda: VALIDATE, lambda: 0.0)
    assert rows(store.path)["counters"] <= 4  # this activation's rules (count + fired), not 50 times that
    state.deactivate()
    assert rows(store.path)["counters"] == 0
    store.close()


def test_reload_claims_go_with_a_purge_and_a_reset(tmp_path):
    path = tmp_path / "chaos.yaml"
    path.write_text("rules: [{name: one, effect: {status: 500}}]")
    store = cast(SQLiteStore, open_store(f"sqlite:///{tmp_path / 's.db'}"))
    ticks = [0.0]
    state = FaultState(store, monotonic=lambda: ticks[0])
    state.activate_loaded(loader.load(str(path)), 0)
    for n in range(30):
        stat = path.stat()
        path.write_text(f"rules: [{{name: r{n}, effect: {{status: 500}}}}]")
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        ticks[0] += 1.0
        assert state.current(lambda: 1000.0).profile.rules[0].name == f"r{n}"
    before = rows(store.path)
    assert before["kv"] <= 3, before  # profile document, version; claims are not kv rows
    store.purge(1_000_000.0)  # long after every claim's life
    assert rows(store.path)["counters"] == 0
    state.current(lambda: 1000.0)
    store.reset()
    assert rows(store.path)["counters"] == 0
    store.close()


@pytest.mark.reliability
def test_twenty_thousand_requests_with_profile_switches_leave_the_store_flat(client, runtime, fake_time):
    janitor = Janitor(runtime.store, runtime.clock)
    path = runtime.store.path
    peak: dict[str, int] = {}
    for switch in range(100):
        assert client.put("/_emulator/profile", json={"profile": counting_profile(f"s{switch}")}).status_code == 200
        for n in range(200):
            if n % 20 == 0:
                token = client.post("/_emulator/pass-tokens", json={"app_key": "demo_app", "ttl": 30}).json
                client.post("/v1/validate", json={"pass_token": token["pass_token"]}, headers=DEMO)
            else:
                client.post("/v1/validate", json={"pass_token": "x"}, headers=DEMO)
        fake_time.advance(10)
        janitor.purge()
        if switch >= 10:  # after warm-up every count must stay under its first peak
            now = rows(path)
            for table, count in now.items():
                assert count <= peak.setdefault(table, count), f"switch {switch}: {table} grew: {now} vs {peak}"
        else:
            for table, count in rows(path).items():
                peak[table] = max(peak.get(table, 0), count)
    final = rows(path)
    assert final["journal"] == runtime.journal.capacity
    assert final["counters"] <= 6 and final["kv"] <= 5, final
