"""The store's runtime-app rows (issue 13 item 3), one contract for every backend: add once
(a second add of the same key loses), remove, list, and a full reset keeps them."""

from __future__ import annotations

from tests.test_store import store, store_backend  # noqa: F401  (the contract's fixtures: every backend)


def test_add_once_then_the_key_is_taken(store):  # noqa: F811
    assert store.app_add("shop", '{"app_key":"shop"}') is True
    assert store.app_add("shop", '{"app_key":"shop","other":1}') is False
    assert store.app_docs() == {"shop": '{"app_key":"shop"}'}
    assert store.app_docs("shop") == {"shop": '{"app_key":"shop"}'}
    assert store.app_docs("nope") == {}


def test_remove_and_list(store):  # noqa: F811
    store.app_add("a", "A")
    store.app_add("b", "B")
    assert store.app_remove("a") is True
    assert store.app_remove("a") is False
    assert store.app_docs() == {"b": "B"}


def test_resets_keep_the_apps(store):  # noqa: F811
    store.app_add("a", "A")
    store.reset("a")
    store.reset()
    assert store.app_docs() == {"a": "A"}
