"""What one validate costs the store: counted calls, never times (issue 11).

The request path reads the rarely changing shared state (clock offset, active profile version)
in one store read, writes exactly one consume and one journal entry, and nothing else."""

from __future__ import annotations

from emulator.app import create_app
from emulator.runtime import build_runtime
from emulator.settings import Settings
from emulator.store.memory import MemoryStore
from tests.support.apps import DEMO


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def get(self, key):
        self.calls.append(f"get {key}")
        return super().get(key)

    def get_many(self, keys):
        self.calls.append("get_many " + ",".join(keys))
        return super().get_many(keys)

    def consume(self, token_id, **kw):
        self.calls.append("consume")
        return super().consume(token_id, **kw)

    def consumed(self, token_id, **kw):
        self.calls.append("consumed")
        return super().consumed(token_id, **kw)

    def journal_append(self, entry, *, capacity):
        self.calls.append("journal_append")
        return super().journal_append(entry, capacity=capacity)

    def incr(self, key, amount=1, **kw):
        self.calls.append(f"incr {key}")
        return super().incr(key, amount, **kw)


def test_a_validate_reads_the_shared_state_once_and_writes_one_consume_and_one_entry(fake_time):
    store = CountingStore()
    rt = build_runtime(Settings(store="memory://", secret="s", quiet=True), real_time=fake_time, store=store)
    client = create_app(runtime=rt).test_client()
    first, token = (client.post("/_emulator/pass-tokens", json={"app_key": "demo_app", "action": "login"})
                    .json["pass_token"] for _ in range(2))
    client.post("/v1/validate", json={"pass_token": first}, headers=DEMO)  # the janitor's purge, once per 30 s
    store.calls.clear()
    answer = client.post("/v1/validate", json={"pass_token": token}, headers=DEMO)
    assert answer.json["data"]["valid"] is True
    assert store.calls == ["get_many clock_offset,fault_profile_version", "consume", "journal_append"]


def test_a_success_envelope_is_byte_for_byte_what_flask_jsonify_writes():
    """envelope.ok skips Flask's JSON provider on the hot path; clients must not see a difference."""
    from flask import jsonify

    from emulator.web import envelope

    app = create_app(Settings(store="memory://", secret="s", quiet=True))
    data = {"valid": True, "uid": None, "action": "lögin ✓", "captcha_args": {"risk_score": 10, "referer": "a\"b"}}
    with app.app_context():
        mine, flasks = envelope.ok(data), jsonify(envelope.ok_body(data))
    assert mine.get_data() == flasks.get_data()
    assert mine.mimetype == flasks.mimetype == "application/json"


def test_the_store_encoding_is_exactly_json_dumps_compact_and_sorted():
    """store.base.dump reuses one C encoder; stored text must not change."""
    import json

    from emulator.store.base import dump

    nested = {"b": 1, "a": [1.5, None, True, "é\"\n"], "c": {"z": 1e16, "y": -0.0, "x": 10**30}}
    values: tuple[object, ...] = (nested, [], {}, "x", 3)
    for value in values:
        assert dump(value) == json.dumps(value, separators=(",", ":"), sort_keys=True)
