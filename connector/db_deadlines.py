"""Deadlines on every call to PostgreSQL, so that a hung server costs a request seconds.

The server's own `statement_timeout` ends a slow query, but a server that has stopped (a
SIGSTOP, a frozen virtual machine, a storage stall) enforces nothing: its kernel still
acknowledges what the client sends, so neither TCP keepalives nor `tcp_user_timeout` ever
fire, and the driver waits for an answer forever. Here each call (execute, commit,
rollback, the pool's ping) is armed with a deadline; a watchdog thread shuts the socket
of a call that overruns it. The driver then wakes with "server closed the connection",
SQLAlchemy treats that as a disconnect (the connection is thrown away, never reused), and
the request answers 503 (connector.web.handlers).

One watchdog thread per process, started by the first armed call (never at import, and
again in a forked child, which inherits no threads).
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine

from connector.failure_pause import FailurePause

log = logging.getLogger(__name__)

# Set for schema migrations, which may rightly take minutes.
_unbounded: contextvars.ContextVar[bool] = contextvars.ContextVar("db_unbounded", default=False)


@contextmanager
def unbounded() -> Iterator[None]:
    """Calls made in this block run without a deadline."""
    token = _unbounded.set(True)
    try:
        yield
    finally:
        _unbounded.reset(token)


class Watchdog:
    """Shuts the socket of any armed call still running at its deadline.

    Each armed call holds a duplicate of its socket's descriptor: the driver may close its
    own descriptor when the call fails (and the number be reused at once by another
    socket), but the duplicate names this socket until the call is disarmed.
    """

    def __init__(self) -> None:
        self._reset()
        # A child forked while another thread held the lock would inherit it held.
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._armed: dict[int, tuple[float, int]] = {}
        self._tokens = itertools.count()
        self._wake_at = math.inf
        self._running = False

    def arm(self, fileno: int, seconds: float) -> int | None:
        try:
            duplicate = os.dup(fileno)
        except OSError:
            return None  # already closed: the call fails by itself
        deadline = time.monotonic() + seconds
        token = next(self._tokens)
        with self._condition:
            if not self._running:
                threading.Thread(target=self._watch, name="db-deadlines", daemon=True).start()
                self._running = True
            self._armed[token] = (deadline, duplicate)
            # The watchdog sleeps until the earliest deadline it knows; wake it only when
            # this one comes sooner (rarely: deadlines are mostly of one length).
            if deadline < self._wake_at:
                self._condition.notify()
        return token

    def disarm(self, token: int | None) -> None:
        if token is None:
            return
        with self._condition:
            entry = self._armed.pop(token, None)
        if entry is not None:
            os.close(entry[1])

    def _watch(self) -> None:
        while True:
            with self._condition:
                now = time.monotonic()
                expired = [t for t, (deadline, _) in self._armed.items() if deadline <= now]
                for token in expired:
                    _deadline, duplicate = self._armed.pop(token)
                    _shut(duplicate)
                    os.close(duplicate)
                self._wake_at = min((d for d, _ in self._armed.values()), default=math.inf)
                timeout = None if self._wake_at == math.inf else self._wake_at - now
                if not expired:
                    self._condition.wait(timeout)
            if expired:
                log.warning("%d database call(s) overran the deadline; closed", len(expired))


def _shut(duplicate: int) -> None:
    # Shutting the socket wakes the call blocked on it, which fails as on a lost server.
    try:
        sock = socket.socket(fileno=duplicate)
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.detach()  # the descriptor is closed by the caller, once


# One per process: every engine's calls are watched by the same thread.
_WATCHDOG = Watchdog()


def _fileno(connection_of: Callable[[Any], Any], target: Any) -> int | None:
    try:
        fileno: int = connection_of(target).fileno()
        return fileno
    except Exception:  # closed or broken: the call fails by itself, no deadline needed
        return None


def guard(engine: Engine, seconds: float, ping_seconds: float) -> None:
    """Arm every call the engine's dialect makes on a DBAPI connection."""
    watchdog = _WATCHDOG
    dialect: Any = engine.dialect

    def bounded(
        method: Callable[..., Any], connection_of: Callable[[Any], Any], default: float
    ) -> Callable[..., Any]:
        def call(target: Any, *args: Any, **kwargs: Any) -> Any:
            fileno = None if _unbounded.get() else _fileno(connection_of, target)
            if fileno is None:
                return method(target, *args, **kwargs)
            token = watchdog.arm(fileno, default)
            try:
                return method(target, *args, **kwargs)
            finally:
                watchdog.disarm(token)

        return call

    def cursor_connection(cursor: Any) -> Any:
        return cursor.connection

    def itself(connection: Any) -> Any:
        return connection

    # A second of slack: the server's statement_timeout should end a slow query first,
    # with a clean error and the connection kept.
    for name in ("do_execute", "do_execute_no_params", "do_executemany"):
        setattr(dialect, name, bounded(getattr(dialect, name), cursor_connection, seconds + 1))
    for name in ("do_commit", "do_rollback"):
        setattr(dialect, name, bounded(getattr(dialect, name), itself, seconds + 1))
    dialect.do_ping = bounded(dialect.do_ping, itself, ping_seconds)
    # A new connection's first queries (server version, isolation level, type lookups)
    # run under SQLAlchemy's first-connect lock: hung there, no connection could be made.
    dialect.initialize = bounded(
        dialect.initialize, lambda connection: connection.connection.dbapi_connection, seconds + 1
    )
    _pause_after_failed_connect(dialect)


# After a connection attempt fails, new attempts fail at once for this long: requests
# queued behind a dead or hung server answer 503 at once instead of each waiting out the
# connect timeout (one attempt per address of the host) again.
CONNECT_PAUSE_SECONDS = 2.0


def _pause_after_failed_connect(dialect: Any) -> None:
    connect = dialect.connect
    pause = FailurePause(CONNECT_PAUSE_SECONDS)

    def paused_connect(*cargs: Any, **cparams: Any) -> Any:
        if pause.active:
            raise dialect.loaded_dbapi.OperationalError(
                f"connecting failed less than {CONNECT_PAUSE_SECONDS:g} s ago; not tried again yet"
            )
        try:
            return connect(*cargs, **cparams)
        except dialect.loaded_dbapi.Error:
            pause.failed()
            raise

    dialect.connect = paused_connect
