"""The long-poll's wait (domain/journal_filter.wait_for), driven by a fake sleep and monotonic
clock: while nothing new arrives it reads only the journal's sequence number, never the entries."""

from __future__ import annotations

from emulator.domain.journal import Journal
from emulator.domain.journal_filter import JournalFilter, page_cursor, wait_for
from emulator.store.memory import MemoryStore


class Ticking:
    """A monotonic clock that a fake sleep advances, and a hook run at a chosen sleep."""

    def __init__(self):
        self.now, self.sleeps, self.hooks = 0.0, 0, {}

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps += 1
        if self.sleeps in self.hooks:
            self.hooks[self.sleeps]()


class CountingStore(MemoryStore):
    def __init__(self):
        super().__init__()
        self.queries = 0

        self.sequence_reads = 0

    def journal_query(self, query):
        self.queries += 1
        return super().journal_query(query)

    def journal_latest_id(self):
        self.sequence_reads += 1
        return super().journal_latest_id()


def entry(endpoint: str, outcome: str = "valid") -> dict:
    return {"endpoint": endpoint, "outcome": outcome, "app_key": "demo_app"}


def setup(entries: int = 20):
    store, t = CountingStore(), Ticking()
    journal = Journal(store, capacity=1000)
    for _ in range(entries):
        journal.record(entry("validate"))
    return store, journal, t


def test_a_wait_that_never_matches_queries_the_entries_once_and_then_only_reads_the_sequence():
    store, journal, t = setup()
    rows = wait_for(journal, JournalFilter(outcome="never"), 10.0, interval=0.05, sleep=t.sleep,
                    monotonic=lambda: t.now)
    assert rows == [] and t.sleeps >= 199
    assert store.queries == 1


def test_new_entries_are_searched_from_where_the_last_search_ended_and_a_match_answers():
    store, journal, t = setup()
    t.hooks[3] = lambda: journal.record(entry("validate", "rejected"))
    t.hooks[7] = lambda: journal.record(entry("issue"))
    rows = wait_for(journal, JournalFilter(endpoint="issue"), 10.0, sleep=t.sleep, monotonic=lambda: t.now)
    assert [r["endpoint"] for r in rows] == ["issue"] and rows[0]["id"] == 22
    assert t.sleeps == 7 and store.queries == 3  # the first search, then one per change


def test_a_reset_during_the_wait_restarts_the_search_from_the_callers_after():
    store, journal, t = setup()

    def reset_then_match():
        store.reset()
        journal.record(entry("issue"))

    t.hooks[2] = reset_then_match
    rows = wait_for(journal, JournalFilter(endpoint="issue"), 10.0, sleep=t.sleep, monotonic=lambda: t.now)
    assert [r["id"] for r in rows] == [1]


def test_an_existing_match_answers_at_once_and_a_zero_timeout_never_sleeps():
    store, journal, t = setup()
    assert len(wait_for(journal, JournalFilter(endpoint="validate"), 5.0, sleep=t.sleep, monotonic=lambda: t.now)) == 20
    assert wait_for(journal, JournalFilter(endpoint="issue"), 0.0, sleep=t.sleep, monotonic=lambda: t.now) == []
    assert t.sleeps == 0


def test_the_waits_of_one_process_share_one_sequence_read_per_interval():
    store, journal, t = setup()
    reads = []
    for _ in range(32):  # 32 waits at the same moment: the first reads, the others reuse it
        store.sequence_reads = 0
        journal.latest_id(0.05, now=t.now)
        reads.append(store.sequence_reads)
    assert reads == [1] + [0] * 31
    t.now += 0.05
    assert journal.latest_id(0.05, now=t.now) == 20 and store.sequence_reads == 1


def test_a_wait_without_after_that_answers_a_full_page_gives_the_cursor_of_its_last_entry():
    """Three matches land within one interval; the wait answers the oldest (limit 1) and its
    latest_id must not pass the two it did not return."""
    store, journal, t = setup()
    before = journal.latest_id()
    t.hooks[2] = lambda: [journal.record(entry("issue")) for _ in range(3)]
    f = JournalFilter(endpoint="issue", limit=1)
    rows = wait_for(journal, f, 10.0, sleep=t.sleep, monotonic=lambda: t.now)
    assert [r["id"] for r in rows] == [21]
    assert page_cursor(journal, f, rows, before) == 21
