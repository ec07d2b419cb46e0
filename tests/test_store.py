"""The same contract for both shared stores: in-process and Redis."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from connector.store import MemoryStore, RedisStore, SharedStore, StoreUnavailable


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[SharedStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    url = request.getfixturevalue("redis_url")
    prefix = f"connector-test:{uuid.uuid4().hex}:"
    yield RedisStore(url, prefix)
    from tests.conftest import _clear_redis

    _clear_redis(url, prefix)


def test_get_missing_is_none(store: SharedStore) -> None:
    assert store.get("nothing-here") is None


def test_set_then_get(store: SharedStore) -> None:
    store.set("k", b"\x00value\xff")
    assert store.get("k") == b"\x00value\xff"


def test_set_overwrites(store: SharedStore) -> None:
    store.set("k", b"one")
    store.set("k", b"two")
    assert store.get("k") == b"two"


def test_expiry(store: SharedStore) -> None:
    store.set("short", b"v", expires_in=0.05)
    store.set("long", b"v", expires_in=60)
    assert store.get("short") == b"v"
    time.sleep(0.15)
    assert store.get("short") is None
    assert store.get("long") == b"v"


def test_delete(store: SharedStore) -> None:
    store.set("k", b"v")
    store.delete("k")
    store.delete("never-set")
    assert store.get("k") is None


def test_incr_counts_from_zero(store: SharedStore) -> None:
    assert store.incr("n") == 1
    assert store.incr("n") == 2
    assert store.incr("n", 5) == 7
    assert store.get("n") == b"7"


def test_incr_on_a_number_that_was_set(store: SharedStore) -> None:
    store.set("n", b"41")
    assert store.incr("n") == 42


def test_ping(store: SharedStore) -> None:
    store.ping()


def test_redis_store_unreachable_raises_store_unavailable() -> None:
    # One exception for every failure, which callers that can do without the store catch.
    store = RedisStore("redis://127.0.0.1:1/0")
    for call in (store.ping, lambda: store.get("k"), lambda: store.incr("k")):
        with pytest.raises(StoreUnavailable):
            call()
