"""Request keys name a request before the journal numbers it (a consume record keeps the key, and
explain finds the consuming request by it): unique across workers, replicas and restarts, and
cheap, with no random-number syscall per request (issue 11)."""

from __future__ import annotations

import os
import random
import secrets

from emulator.domain.ids import UniqueIds
from emulator.domain.journal import new_request_key


def test_keys_draw_randomness_once_per_process_then_count():
    draws: list[int] = []

    def urandom(n: int) -> bytes:
        draws.append(n)
        return bytes.fromhex("fffffffffffffffe")

    keys = UniqueIds(urandom)
    assert [keys() for _ in range(3)] == ["fffffffffffffffe", "ffffffffffffffff", "0000000000000000"]
    assert draws == [8]


def test_two_generators_start_from_their_own_random_numbers():
    first, second = UniqueIds(), UniqueIds()
    assert abs(int(first(), 16) - int(second(), 16)) > 10**9  # fails with odds about 1e-10


def test_a_forked_child_does_not_continue_its_parents_keys():
    """gunicorn forks its workers: each must draw its own start, not count on from the master's."""
    before = new_request_key()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next key, then leave at once
        os.write(write_end, new_request_key().encode())
        os._exit(0)
    os.close(write_end)
    child = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    after = new_request_key()
    assert int(after, 16) == (int(before, 16) + 1) % 2**64  # the parent counts on
    assert abs(int(child, 16) - int(before, 16)) > 10**9, (before, child)


def test_token_ids_draw_no_randomness_per_token_and_sort_in_the_order_they_were_made(monkeypatch):
    """Token and challenge ids come from the same kind of per-process counter: a getrandom syscall
    per token cost about 3 us under load (issue 11). They sort as they were made (16 hex digits,
    as text), so the store's index takes a process's tokens on one page (see the next test)."""
    from emulator.domain import tokens

    def no_syscall(n: int) -> bytes:
        raise AssertionError("a random-number syscall while minting")

    monkeypatch.setattr(os, "urandom", no_syscall)
    for name in ("token_bytes", "token_hex", "randbits"):
        monkeypatch.setattr(secrets, name, no_syscall)
    ids = [tokens.new_id() for _ in range(5000)]
    assert len(set(ids)) == 5000 and all(len(i) == 16 and int(i, 16) >= 0 for i in ids)
    # in order, but where the 64-bit count wraps to 0 (one place at most)
    assert sum(later < earlier for earlier, later in zip(ids, ids[1:], strict=False)) <= 1


def test_consuming_tokens_minted_in_a_row_writes_half_the_pages_random_ids_would(tmp_path):
    """Why ids count up instead of looking random: each consume inserts the id into the consumed
    table's index, and random ids put every insert of a transaction on a different page. Counted
    in SQLite's write-ahead log (frames, one per page written), never timed: 100 group commits
    of 6 consumes on a table of 12 000."""
    from emulator.domain import tokens
    from emulator.store.group import Slot
    from emulator.store.sqlite import SQLiteStore, _Consume

    def frames(next_id) -> int:
        path = tmp_path / f"{len(list(tmp_path.iterdir()))}.db"
        store = SQLiteStore(f"sqlite:///{path}", str(path))

        def commit(n: int) -> None:
            store._write_batch([Slot(_Consume((next_id(), "a", 1.9e9, '{"app_key":"demo_app"}', 1.9e9)))
                                for _ in range(n)])

        for _ in range(2000):
            commit(6)
        conn = store._conn()
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for _ in range(100):
            commit(6)
        written = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
        store.close()
        return int(written)

    rng = random.Random(7)
    random_ids = frames(lambda: f"{rng.getrandbits(64):016x}")
    minted = frames(tokens.new_id)
    assert minted < 0.6 * random_ids, (minted, random_ids)


def test_ids_count_across_the_64_bit_wrap_without_repeating():
    ids = UniqueIds(lambda n: bytes.fromhex("fffffffffffffc00"))
    made = [ids() for _ in range(2048)]
    assert made[0] == "fffffffffffffc00" and made[1024] == "0000000000000000" and len(set(made)) == 2048


def test_the_process_id_is_known_without_asking_the_kernel_and_follows_a_fork(monkeypatch):
    from emulator import process

    assert process.pid() == os.getpid()
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(write_end, b"%d %d" % (process.pid(), os.getpid()))
        os._exit(0)
    os.close(write_end)
    seen, real = os.read(read_end, 64).split()
    os.close(read_end)
    os.waitpid(child, 0)
    assert int(seen) == int(real) == child
    me = os.getpid()

    def syscall() -> int:
        raise AssertionError("a getpid syscall")

    monkeypatch.setattr(os, "getpid", syscall)
    assert process.pid() == me  # answered from memory
