"""The bound on journal visibility (issue 11, item 5): a request's journal entry is committed to
the shared store before its answer is sent, so the moment a client has the answer, a
`GET /_emulator/requests` on any other connection, answered by any worker, shows the entry.
Checked on the default worker model with 4 workers, each round on fresh connections."""

from __future__ import annotations

import pytest
import requests

from tests.support.servers import running_emulator

pytestmark = pytest.mark.integration
DEMO = {"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"}
ROUNDS = 120


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_an_answered_request_is_in_the_journal_of_every_worker_at_once(tmp_path, store, request):
    url = f"sqlite:///{tmp_path / 'state.db'}" if store == "sqlite" else request.getfixturevalue("redis_url")
    with running_emulator("--workers", "4", "--store", url) as server:
        tokens = [server.mint() for _ in range(ROUNDS)]
        answered_by, missing, keys = set(), [], []
        for n, token in enumerate(tokens):
            with requests.Session() as client:  # a fresh connection per request: spread over the workers
                body = client.post(server.url + "/v1/validate", json={"pass_token": token}, headers=DEMO,
                                   timeout=10).json()
            assert body["data"]["valid"] is True
            with requests.Session() as observer:
                rows = observer.get(server.url + "/_emulator/requests", params={"token": token, "endpoint": "validate"},
                                    timeout=10).json()["requests"]
            if len(rows) != 1 or rows[0]["outcome"] != "valid":
                missing.append((n, rows))
            else:
                answered_by.add(rows[0]["worker_pid"])
                keys.append(rows[0]["request_key"])
        assert not missing, f"{len(missing)} of {ROUNDS} answered validates not yet in the journal: {missing[:3]}"
        assert len(answered_by) >= 2, "every validate landed on one worker: the check proves nothing"
        # request keys count up from a random start drawn in each worker, not in the master before the fork
        assert len(set(keys)) == len(keys), "two workers gave out the same request key"
