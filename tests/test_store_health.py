"""Health tells the truth about the SQLite file under a running server: deleted, replaced or
read-only (immutable via chattr from e2fsprogs, so even root cannot write it) answers 503 with the reason; old
connections that still answer `SELECT 1` do not make it look healthy."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


def db_path(runtime) -> Path:
    return Path(runtime.store.path)


def health(client):
    response = client.get("/_emulator/health")
    return response.status_code, response.json


def test_healthy_file_answers_ok(client):
    assert health(client)[0] == 200


def test_deleted_database_file_answers_503_with_the_reason(client, runtime):
    assert health(client)[0] == 200
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path(runtime)}{suffix}").unlink(missing_ok=True)
    status, body = health(client)
    assert status == 503 and body["status"] == "unavailable"
    assert "deleted" in body["error"] and str(db_path(runtime)) in body["error"]


def test_replaced_database_file_answers_503(client, runtime, tmp_path):
    other = tmp_path / "other.db"
    other.write_bytes(b"")
    os.replace(other, db_path(runtime))
    status, body = health(client)
    assert status == 503 and "replaced" in body["error"]


def test_deleted_file_is_not_silently_recreated_by_a_new_connection(runtime):
    path = db_path(runtime)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    from emulator.errors import StoreUnavailable

    runtime.store.close()  # this thread's next call opens a new connection
    with pytest.raises(StoreUnavailable):
        runtime.store.get("anything")
    assert not path.exists()


def test_read_only_database_file_answers_503_with_the_reason(client, runtime):
    path = db_path(runtime)
    assert health(client)[0] == 200
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.fail("chattr +i failed: this file system cannot make a file read-only for root")
    try:
        status, body = health(client)
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    assert status == 503 and "read-only" in body["error"], body
    assert health(client)[0] == 200  # writable again: healthy again
