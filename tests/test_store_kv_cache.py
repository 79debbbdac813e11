"""SQLite's per-process copy of kv reads (issue 11): requests read the clock offset and the
profile version without a query while nothing changed, and see every change at once.

Two SQLiteStore objects on one file stand for two processes: each maps the lock file's
generation counter on its own, exactly as separate workers or replicas do."""

from __future__ import annotations

import pytest

from emulator.store.sqlite import SQLiteStore

KEYS = ("clock_offset", "fault_profile_version")


@pytest.fixture
def pair(tmp_path):
    db = str(tmp_path / "s.db")
    reader, writer = SQLiteStore(f"sqlite:///{db}", db), SQLiteStore(f"sqlite:///{db}", db)
    yield reader, writer
    reader.close()
    writer.close()


def statements(store: SQLiteStore) -> list[str]:
    seen: list[str] = []
    store._conn().set_trace_callback(seen.append)
    return seen


def test_an_unchanged_kv_is_read_without_a_query(pair):
    reader, writer = pair
    writer.set("clock_offset", "5.0")
    assert reader.get_many(KEYS) == {"clock_offset": "5.0", "fault_profile_version": None}
    seen = statements(reader)
    for _ in range(3):
        assert reader.get_many(KEYS) == {"clock_offset": "5.0", "fault_profile_version": None}
    assert seen == []
    writer.consume("t", scope="a", expires_at=1e12, record={})  # hot-path writes leave kv alone
    writer.journal_append({"request_key": "k"}, capacity=10)
    reader.get_many(KEYS)
    assert seen == []


CHANGES = {
    "set": lambda s: s.set("clock_offset", "60.0"),
    "set_many": lambda s: s.set_many({"clock_offset": "60.0", "fault_profile_version": "v2"}),
    "set_if_absent": lambda s: s.set_if_absent("fault_profile_version", "v2"),
    "delete": lambda s: s.delete("clock_offset"),
    "incr_float": lambda s: s.incr_float("clock_offset", 55.0),
    "reset": lambda s: s.reset(),
}
EXPECTED = {
    "set": {"clock_offset": "60.0", "fault_profile_version": None},
    "set_many": {"clock_offset": "60.0", "fault_profile_version": "v2"},
    "set_if_absent": {"clock_offset": "5.0", "fault_profile_version": "v2"},
    "delete": {"clock_offset": None, "fault_profile_version": None},
    "incr_float": {"clock_offset": "60.0", "fault_profile_version": None},
    "reset": {"clock_offset": "5.0", "fault_profile_version": None},  # a store reset leaves these keys
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_every_kv_write_of_another_process_is_seen_by_the_next_read(pair, change):
    reader, writer = pair
    writer.set("clock_offset", "5.0")
    reader.get_many(KEYS)
    CHANGES[change](writer)
    assert reader.get_many(KEYS) == EXPECTED[change]


def test_a_purge_that_raises_the_horizon_is_seen_too(pair):
    reader, writer = pair
    keys = ("purge_horizon",)
    before = reader.get_many(keys)
    writer.consume("old", scope="a", expires_at=100.0, record={})
    assert writer.purge(200.0) == 1
    assert reader.get_many(keys) != before


def test_a_reader_that_closed_and_reopened_still_sees_changes(pair):
    reader, writer = pair
    reader.get_many(KEYS)
    reader.close()
    writer.set("clock_offset", "7.0")
    assert reader.get_many(KEYS)["clock_offset"] == "7.0"
    writer.set("clock_offset", "8.0")
    assert reader.get_many(KEYS)["clock_offset"] == "8.0"
