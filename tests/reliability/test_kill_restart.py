"""SIGKILL of the whole emulator process group in the middle of validate load, then a restart
on the same SQLite file, five times over: nothing consumed is forgotten, nothing unused is
lost, the database passes `PRAGMA integrity_check` after every kill, and the journal is
continuous (every answered validate has its entry; ids are never handed out twice).

Every token that was answered valid:true before a kill must answer token_consumed after the
restart; every token never sent must still validate (the signing secret, generated on the
first start and kept in the store, survived too)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from emulator.domain.journal import token_fingerprint
from tests.reliability.racing import DEMO
from tests.support.servers import EmulatorProcess, start_emulator

pytestmark = [pytest.mark.integration, pytest.mark.reliability]
CYCLES, TOKENS, LOADERS, KILL_AFTER_SUCCESSES, NEVER_SENT = 5, 240, 8, 60, 20
SERVE = ("--workers", "2", "--threads", "8", "--journal-size", "100000")


def validate(session: requests.Session, url: str, token: str) -> dict:
    response = session.post(url + "/v1/validate", data=json.dumps({"pass_token": token}), headers=DEMO, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def load_then_kill(emu: EmulatorProcess, tokens: list[str]) -> tuple[list[str], set[str]]:
    """Validate from 8 threads; SIGKILL master and workers at once after enough successes."""
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
                            os.killpg(emu.pid, signal.SIGKILL)

    try:
        with ThreadPoolExecutor(LOADERS) as pool:
            list(pool.map(load, [tokens[i::LOADERS] for i in range(LOADERS)]))
    finally:
        emu.stop(signal.SIGKILL)
    assert killed.is_set(), "the load finished before the kill: nothing was tested"
    return valid_before, attempted


def integrity(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def journal(url: str) -> list[dict]:
    return requests.get(url + "/_emulator/requests", params={"limit": 100000}, timeout=30).json()["requests"]


def test_five_sigkills_during_load_forget_nothing_and_keep_the_journal_whole(tmp_path):
    db = tmp_path / "state.db"
    store = ("--store", f"sqlite:///{db}")  # no --secret: kept in the store
    started: list[EmulatorProcess] = []
    try:
        run_cycles(db, store, started)
    finally:
        for server in started:
            server.stop(signal.SIGKILL)


def run_cycles(db: Path, store: tuple[str, str], started: list[EmulatorProcess]) -> None:
    emu = start_emulator(*SERVE, *store)
    started.append(emu)
    last_id = 0
    for cycle in range(CYCLES):
        tokens = [emu.mint() for _ in range(TOKENS)]
        valid_before, attempted = load_then_kill(emu, tokens)
        never_sent = [t for t in tokens if t not in attempted][:NEVER_SENT]
        assert len(never_sent) == NEVER_SENT, f"cycle {cycle}: every token was sent before the kill"
        assert integrity(db) == "ok", f"cycle {cycle}: integrity_check after SIGKILL"

        emu = start_emulator(*SERVE, *store)
        started.append(emu)
        entries = journal(emu.url)
        ids = [e["id"] for e in entries]
        assert ids == sorted(set(ids)), f"cycle {cycle}: journal ids repeat or go back"
        assert ids[-1] >= last_id, f"cycle {cycle}: journal went back from {last_id} to {ids[-1]}"
        recorded = {e["token_fp"] for e in entries if e["endpoint"] == "validate" and e["outcome"] == "valid"}
        missing = [t for t in valid_before if token_fingerprint(t) not in recorded]
        assert not missing, f"cycle {cycle}: {len(missing)} answered validates have no journal entry"
        with requests.Session() as session:
            forgotten = [t for t in valid_before if validate(session, emu.url, t).get("error") != "token_consumed"]
            lost = [t for t in never_sent if validate(session, emu.url, t).get("valid") is not True]
        assert not forgotten, f"cycle {cycle}: {len(forgotten)} of {len(valid_before)} consumed tokens forgotten"
        assert not lost, f"cycle {cycle}: {len(lost)} never-sent tokens no longer validate"
        new_ids = [e["id"] for e in journal(emu.url) if e["id"] > ids[-1]]
        assert new_ids and new_ids[0] == ids[-1] + 1, f"cycle {cycle}: numbering did not continue after {ids[-1]}"
        last_id = new_ids[-1]
