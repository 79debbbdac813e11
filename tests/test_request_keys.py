"""Request keys name a request before the journal numbers it (a consume record keeps the key, and
explain finds the consuming request by it): unique across workers, replicas and restarts, and
cheap, with no random-number syscall per request (issue 11)."""

from __future__ import annotations

import os
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


def test_token_ids_draw_no_randomness_per_token_yet_look_unrelated(monkeypatch):
    """Token and challenge ids come from the same kind of per-process counter, scrambled by a
    bijection so consecutive ids share no visible pattern: a getrandom syscall per token cost
    about 3 us under load (issue 11), and ids stay unique within the process."""
    from emulator.domain import tokens

    def no_syscall(n: int) -> bytes:
        raise AssertionError("a random-number syscall while minting")

    monkeypatch.setattr(os, "urandom", no_syscall)
    for name in ("token_bytes", "token_hex", "randbits"):
        monkeypatch.setattr(secrets, name, no_syscall)
    ids = [tokens.new_id() for _ in range(5000)]
    assert len(set(ids)) == 5000 and all(len(i) == 16 and int(i, 16) >= 0 for i in ids)
    assert max(len(os.path.commonprefix([a, b])) for a, b in zip(ids, ids[1:], strict=False)) < 8


def test_scrambled_ids_are_the_count_passed_through_a_bijection():
    """Distinct counts give distinct ids, across the 64-bit wrap too; unscrambled ids are the count."""
    start = bytes.fromhex("fffffffffffffc00")
    scrambled = UniqueIds(lambda n: start, scrambled=True)
    ids = [scrambled() for _ in range(2048)]
    assert len(set(ids)) == 2048 and "fffffffffffffc00" not in ids
    plain = UniqueIds(lambda n: start)
    assert plain() == "fffffffffffffc00"


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
