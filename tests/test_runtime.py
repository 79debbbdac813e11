"""The shared signing secret and the janitor that keeps the store from growing."""

from emulator.domain.janitor import Janitor
from emulator.domain.tokens import Kind
from emulator.runtime import build_runtime
from emulator.settings import Settings


def test_generated_secret_is_shared_through_the_store(tmp_path):
    settings = Settings(store=f"sqlite:///{tmp_path / 's.db'}")
    first, second = build_runtime(settings), build_runtime(settings)
    token = first.signer.encode(first.signer.mint_pass(app_key="demo_app", action="a", now=1.0, ttl=5))
    assert second.signer.load(token, (Kind.PASS,)).claims["act"] == "a"


def test_explicit_secret_wins(tmp_path):
    a = build_runtime(Settings(store="memory://", secret="one"))
    b = build_runtime(Settings(store="memory://", secret="two"))
    token = a.signer.encode(a.signer.mint_pass(app_key="demo_app", action="a", now=1.0, ttl=5))
    assert b.signer.peek(token)[2] is False


def test_janitor_purges_expired_rows_at_most_once_per_interval(runtime, fake_time):
    store = runtime.store
    now = fake_time.now
    store.consume("old", scope="demo_app", expires_at=now - 60, record={})
    store.consume("live", scope="demo_app", expires_at=now + 60, record={})
    janitor = Janitor(store, runtime.clock, interval_s=30)
    assert janitor.maybe_purge() == 1
    store.consume("old2", scope="demo_app", expires_at=now - 30, record={})  # after the horizon (now - 60)
    assert janitor.maybe_purge() == 0  # within the interval: no work on the hot path
    fake_time.advance(31)
    assert janitor.maybe_purge() == 1
    assert store.consumed("live") == {}


def test_purge_never_uses_a_future_virtual_clock(runtime, fake_time):
    """Moving the virtual clock forward must not purge a consumed row a later rewind would need."""
    store = runtime.store
    store.consume("t", scope="demo_app", expires_at=fake_time.now + 100, record={})
    runtime.clock.advance(1000)
    assert Janitor(store, runtime.clock).purge() == 0
    assert store.consumed("t") == {}


def test_store_stays_flat_once_tokens_expire(client, mint, validate, runtime, fake_time):
    for _ in range(50):
        validate(mint(ttl=10))
    assert runtime.store.stats()["consumed"] == 50
    fake_time.advance(60)
    Janitor(runtime.store, runtime.clock).purge()
    assert runtime.store.stats()["consumed"] == 0
