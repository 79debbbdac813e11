"""SIGKILL of the whole emulator process group in the middle of validate load, then a restart
on the same SQLite file: nothing consumed is forgotten, nothing unused is lost.

Every token that was answered valid:true before the kill must answer token_consumed after
the restart; every token never sent must still validate (the signing secret, generated on
the first start and kept in the store, survived too)."""

from __future__ import annotations

import json
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.reliability.racing import DEMO
from tests.support.servers import start_emulator

pytestmark = pytest.mark.integration
TOKENS, LOADERS, KILL_AFTER_SUCCESSES = 600, 8, 150


def validate(session: requests.Session, url: str, token: str) -> dict:
    response = session.post(url + "/v1/validate", data=json.dumps({"pass_token": token}), headers=DEMO, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_sigkill_during_load_then_restart_forgets_nothing_consumed(tmp_path):
    store = f"sqlite:///{tmp_path / 'state.db'}"
    emu = start_emulator("--workers", "2", "--threads", "8", "--store", store)  # no --secret: kept in the store
    tokens = [emu.mint() for _ in range(TOKENS)]
    valid_before: list[str] = []
    attempted: set[str] = set()
    lock, killed = threading.Lock(), threading.Event()

    def load(share: list[str]) -> None:
        with requests.Session() as session:
            for token in share:
                if killed.is_set():
                    return
                with lock:
                    attempted.add(token)
                try:
                    data = validate(session, emu.url, token)
                except (requests.RequestException, AssertionError):
                    return  # the server died under us: this token's fate is unknown
                if data.get("valid") is True:
                    with lock:
                        valid_before.append(token)
                        if len(valid_before) >= KILL_AFTER_SUCCESSES and not killed.is_set():
                            killed.set()
                            os.killpg(emu.pid, signal.SIGKILL)  # master and every worker at once

    shares = [tokens[i::LOADERS] for i in range(LOADERS)]
    try:
        with ThreadPoolExecutor(LOADERS) as pool:
            list(pool.map(load, shares))
    finally:
        emu.stop(signal.SIGKILL)
    assert killed.is_set(), "the load finished before the kill: nothing was tested"
    never_sent = [t for t in tokens if t not in attempted][:40]
    assert len(never_sent) == 40

    with_restart = start_emulator("--workers", "2", "--threads", "8", "--store", store)
    try:
        with requests.Session() as session:
            forgotten = [t for t in valid_before if validate(session, with_restart.url, t).get("error") != "token_consumed"]
            lost = [t for t in never_sent if validate(session, with_restart.url, t).get("valid") is not True]
    finally:
        with_restart.stop()
    assert not forgotten, f"{len(forgotten)} of {len(valid_before)} tokens answered valid before the kill were forgotten"
    assert not lost, f"{len(lost)} never-sent tokens no longer validate after the restart"
