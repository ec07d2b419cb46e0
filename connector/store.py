"""Shared state: Redis when configured, else an in-process store, behind one interface.

Values are bytes. Keys are namespaced by a prefix so that several services (or
test runs) can share one Redis.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol, cast

from connector.failure_pause import FailurePause


class StoreUnavailable(Exception):
    """The shared store could not be reached, or did not answer in time."""


class SharedStore(Protocol):
    # True when every process of the service sees the same values (Redis); the in-process
    # store is one process's own.
    shared: bool

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, expires_in: float | None = None) -> None: ...

    def delete(self, key: str) -> None: ...

    def incr(self, key: str, amount: int = 1) -> int: ...

    def ping(self) -> None:
        """Raise if the store cannot be reached."""


class MemoryStore:
    """A dict with expiry, for a single process (development, tests, one worker)."""

    shared = False

    def __init__(self) -> None:
        self._values: dict[str, tuple[bytes | int, float | None]] = {}
        self._lock = threading.Lock()

    def _live(self, key: str) -> bytes | int | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        value, deadline = entry
        if deadline is not None and deadline <= time.monotonic():
            del self._values[key]
            return None
        return value

    def get(self, key: str) -> bytes | None:
        with self._lock:
            value = self._live(key)
        if isinstance(value, int):
            return str(value).encode()
        return value

    def set(self, key: str, value: bytes, expires_in: float | None = None) -> None:
        deadline = None if expires_in is None else time.monotonic() + expires_in
        with self._lock:
            self._values[key] = (bytes(value), deadline)

    def delete(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)

    def incr(self, key: str, amount: int = 1) -> int:
        with self._lock:
            current = self._live(key)
            deadline = self._values[key][1] if current is not None else None
            number = int(current) + amount if current is not None else amount
            self._values[key] = (number, deadline)
            return number

    def ping(self) -> None:
        return None


# How long a failed Redis is left alone before it is tried again.
PAUSE_AFTER_FAILURE = 5.0


class RedisStore:
    """Redis, with each failure (refused, timed out after 2 s, reset) as StoreUnavailable.

    After a failure, calls fail at once for a few seconds instead of each waiting out its
    timeout again: a hung Redis then costs a request its 2 s once in a while, not on
    every call (the callers fall back to the database, or answer 503 for sign-in state).
    """

    shared = True

    def __init__(self, url: str, prefix: str = "connector:") -> None:
        import redis

        self._client = redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=2, health_check_interval=30
        )
        self._prefix = prefix
        self._errors = (redis.RedisError, OSError)
        self._pause = FailurePause(PAUSE_AFTER_FAILURE)

    def _check_pause(self) -> None:
        if self._pause.active:
            raise StoreUnavailable(f"Redis failed less than {PAUSE_AFTER_FAILURE:g} s ago")

    def _call(self, command: str, key: str, *args: Any, **kwargs: Any) -> Any:
        self._check_pause()
        try:
            return getattr(self._client, command)(self._prefix + key, *args, **kwargs)
        except self._errors as exc:
            self._pause.failed()
            raise StoreUnavailable(f"Redis {command} failed: {exc}") from exc

    def get(self, key: str) -> bytes | None:
        value: bytes | None = self._call("get", key)
        return value

    def set(self, key: str, value: bytes, expires_in: float | None = None) -> None:
        px = None if expires_in is None else max(1, int(expires_in * 1000))
        self._call("set", key, value, px=px)

    def delete(self, key: str) -> None:
        self._call("delete", key)

    def incr(self, key: str, amount: int = 1) -> int:
        return int(self._call("incr", key, amount))

    def ping(self) -> None:
        self._check_pause()
        try:
            self._client.ping()
        except self._errors as exc:
            self._pause.failed()
            raise StoreUnavailable(f"Redis ping failed: {exc}") from exc


def create_store(redis_url: str | None, prefix: str) -> SharedStore:
    # Constructing a Redis client opens no connection; the first command does.
    return RedisStore(redis_url, prefix) if redis_url else MemoryStore()


class HasExtensions(Protocol):
    """The app (a Flask app), as far as the store is concerned: where it is kept."""

    @property
    def extensions(self) -> dict[str, Any]: ...


class HasConfig(HasExtensions, Protocol):
    @property
    def config(self) -> Mapping[str, Any]: ...


def get_store(app: HasExtensions) -> SharedStore:
    # Flask's extensions are Any; init_app (below) puts the SharedStore there.
    return cast(SharedStore, app.extensions["connector.store"])


def init_app(app: HasConfig) -> None:
    app.extensions["connector.store"] = create_store(
        app.config["REDIS_URL"], app.config["REDIS_PREFIX"]
    )
