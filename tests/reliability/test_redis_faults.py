"""Redis dies (SIGKILL) or freezes (SIGSTOP) under validate load from two replicas: no token
is ever accepted twice, every answer during the outage is a clean 503 envelope, and service
resumes by itself (real redis-server with fsync-always AOF, real gunicorn replicas).

Each token is validated through one replica and at once through the other; after recovery,
every token is validated once more. A token with two valid:true answers is a double accept."""

from __future__ import annotations

import itertools
import json
import os
import signal
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.reliability.racing import DEMO
from tests.support.redis import RedisServer
from tests.support.servers import EmulatorProcess, running_emulator

pytestmark = [pytest.mark.integration, pytest.mark.reliability]
LOADERS, TOKENS, OUTAGE_ANSWERS, AFTER_SUCCESSES = 8, 800, 8, 40


class Load:
    """Loader threads validating tokens through both replicas until told to stop."""

    def __init__(self, urls: list[str], tokens: list[str]) -> None:
        self.urls, self.tokens = urls, iter(tokens)
        self.lock, self.stop = threading.Lock(), threading.Event()
        self.valid: Counter[str] = Counter()
        self.sent: list[str] = []
        self.unavailable, self.successes = 0, 0
        self.bad: list[str] = []
        self.changed = threading.Condition(self.lock)

    def answer(self, session: requests.Session, url: str, token: str) -> None:
        r = session.post(url + "/v1/validate", data=json.dumps({"pass_token": token}), headers=DEMO, timeout=15)
        body = r.json()
        with self.lock:
            if body.get("code") == 503:
                ok = (body.get("error") == "service_unavailable" and body["data"].get("valid") is not True
                      and "Traceback" not in r.text)
                self.unavailable += 1
                if not ok:
                    self.bad.append(r.text[:300])
            elif r.status_code == 200 and body["data"].get("valid") is True:
                self.valid[token] += 1
                self.successes += 1
            elif r.status_code != 200 or body["data"].get("error") not in ("token_consumed",):
                self.bad.append(f"{r.status_code} {r.text[:300]}")
            self.changed.notify_all()

    def run(self, n: int) -> None:
        with requests.Session() as a, requests.Session() as b:
            while not self.stop.is_set():
                with self.lock:
                    token = next(self.tokens, None)
                    if token is not None:
                        self.sent.append(token)
                if token is None:
                    return
                first, second = (self.urls[0], self.urls[1]) if n % 2 else (self.urls[1], self.urls[0])
                both = [threading.Thread(target=self.answer, args=(a, first, token)),
                        threading.Thread(target=self.answer, args=(b, second, token))]
                for t in both:
                    t.start()
                for t in both:
                    t.join()

    def wait_until(self, test: Callable[[], bool], what: str) -> None:
        with self.changed:
            assert self.changed.wait_for(test, timeout=60), f"never saw {what}"


def run_outage(tmp_path, break_redis: Callable[[RedisServer], None], heal: Callable[[RedisServer], object]) -> None:
    server = RedisServer(tmp_path / "redis").start()
    try:
        url = server.url(0)
        with running_emulator("--store", url, "--workers", "2", "--threads", "8") as a, \
                running_emulator("--store", url, "--workers", "2", "--threads", "8") as b:
            with ThreadPoolExecutor(LOADERS) as pool:
                tokens = list(pool.map(lambda _: a.mint(), range(TOKENS)))
            load = Load([a.url, b.url], tokens)
            with ThreadPoolExecutor(LOADERS) as pool:
                futures = [pool.submit(load.run, n) for n in range(LOADERS)]
                load.wait_until(lambda: load.successes >= AFTER_SUCCESSES, "successes before the outage")
                break_redis(server)
                seen = load.unavailable
                load.wait_until(lambda: load.unavailable >= seen + OUTAGE_ANSWERS, "503 answers during the outage")
                heal(server)
                before = load.successes
                load.wait_until(lambda: load.successes >= before + AFTER_SUCCESSES, "successes after recovery")
                load.stop.set()
                for f in futures:
                    f.result()
            assert not load.bad, f"{len(load.bad)} unclean answers, e.g. {load.bad[:3]}"
            final(load, a, b)
    finally:
        if server.proc is not None and server.proc.poll() is None:
            os.kill(server.proc.pid, signal.SIGCONT)
        server.stop()


def final(load: Load, a: EmulatorProcess, b: EmulatorProcess) -> None:
    """Validate every sent token once more; no token may have two valid answers in all."""
    def again(pair: tuple[str, str]) -> None:
        with requests.Session() as session:
            load.answer(session, pair[1], pair[0])

    with ThreadPoolExecutor(LOADERS) as pool:
        list(pool.map(again, zip(load.sent, itertools.cycle([a.url, b.url]), strict=False)))
    doubles = [t for t, n in load.valid.items() if n > 1]
    assert not doubles, f"{len(doubles)} tokens were accepted twice"
    assert not load.bad, f"{len(load.bad)} unclean answers after recovery, e.g. {load.bad[:3]}"


def sigkill(server: RedisServer) -> None:
    assert server.proc is not None
    server.proc.kill()
    server.proc.wait(10)
    server.proc = None


def test_redis_sigkill_under_load_gives_no_double_accept_and_clean_503s(tmp_path):
    run_outage(tmp_path, sigkill, lambda server: server.start())


def test_redis_sigstop_under_load_gives_no_double_accept_and_clean_503s(tmp_path):
    def freeze(server: RedisServer) -> None:
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGSTOP)

    def thaw(server: RedisServer) -> None:
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGCONT)

    run_outage(tmp_path, freeze, thaw)
