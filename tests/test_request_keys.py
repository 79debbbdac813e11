"""Request keys name a request before the journal numbers it (a consume record keeps the key, and
explain finds the consuming request by it): unique across workers, replicas and restarts, and
cheap, with no random-number syscall per request (issue 11)."""

from __future__ import annotations

import os

from emulator.domain.journal import RequestKeys, new_request_key


def test_keys_draw_randomness_once_per_process_then_count():
    draws: list[int] = []

    def urandom(n: int) -> bytes:
        draws.append(n)
        return bytes.fromhex("fffffffffffffffe")

    keys = RequestKeys(urandom)
    assert [keys() for _ in range(3)] == ["fffffffffffffffe", "ffffffffffffffff", "0000000000000000"]
    assert draws == [8]


def test_two_generators_start_from_their_own_random_numbers():
    first, second = RequestKeys(), RequestKeys()
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
