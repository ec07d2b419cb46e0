"""Bodies over the size limit: a 413 that the client can read, never a reset connection.

A server that answers before reading the whole body and then closes the socket makes
the kernel reset the connection while the client is still sending, so the client sees
ECONNRESET instead of the 413 (gunicorn itself drains at most 64 KiB of an unread body).
So a body over CONNECTOR_MAX_REQUEST_BYTES is answered 413, and whatever the app left
unread is then read and thrown away, up to DRAIN_CAP_BYTES in all; past that cap, or
when the declared length is already past it, the connection is closed and the client
may see it reset (reading gigabytes to be polite is not worth a worker thread).
The drain also stops after DRAIN_SECONDS: a client that sends slowly must not hold a
worker thread as long as it likes. A socket timeout alone would not do, as it bounds each
recv() and a client trickling a byte at a time never trips it; so under gunicorn, a timer
shuts the socket for reading at the deadline, which ends a read blocked on it. The rest
of the body is never read and gunicorn closes the connection. (Under another server,
which gives the app no socket, the deadline is only checked between reads.)
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from flask import Flask, abort, request

# 64 MiB: two and a half times the default limit, read and dropped at network speed.
DRAIN_CAP_BYTES = 64 * 1024 * 1024
_CHUNK = 64 * 1024
# The drain's whole time: 64 MiB at a modest 100 Mbit/s takes about as long.
DRAIN_SECONDS = 5.0

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _CountingInput:
    """The request's input stream, counting what the app reads."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.consumed = 0
        self.ended = False  # a read found the end of the body

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.consumed += len(data)
        self.ended = self.ended or (not data and size != 0)
        return data

    def readline(self, size: int = -1) -> bytes:
        data = self.stream.readline(size)
        self.consumed += len(data)
        return data

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines = self.stream.readlines(hint)
        self.consumed += sum(len(line) for line in lines)
        return lines

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


def _declared_length(environ: dict[str, Any]) -> int | None:
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    return length if length >= 0 else None


# Set on the environ when a chunked body went past the limit while it was read.
OVER_LIMIT = "connector.body_over_limit"


def _read_up_to(stream: _CountingInput, size: int) -> bytes:
    parts: list[bytes] = []
    got = 0
    while got < size:
        data = stream.read(min(_CHUNK, size - got))
        if not data:
            break
        parts.append(data)
        got += len(data)
    return b"".join(parts)


class BodyLimit:
    """WSGI middleware: bodies over the limit refused alike, and drained after the answer.

    A chunked body is read first, up to the limit: werkzeug quietly cuts such a body at
    the limit instead of refusing it, and a view would see a truncated email. Read, its
    length is known, so every body over the limit is then refused the same way.
    """

    def __init__(
        self, app: Flask, cap: int = DRAIN_CAP_BYTES, seconds: float = DRAIN_SECONDS
    ) -> None:
        self.flask = app
        self.wsgi_app = app.wsgi_app
        self.cap = cap
        self.seconds = seconds

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        length = _declared_length(environ)
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        # A body without a length can be read to its end only when the server says it
        # ends (chunked, under gunicorn): elsewhere reading would wait forever. Requests
        # without a body pass untouched (a file response keeps the server's sendfile).
        terminated = chunked and bool(environ.get("wsgi.input_terminated"))
        if not length and not terminated:
            return self.wsgi_app(environ, start_response)
        stream = _CountingInput(environ["wsgi.input"])
        environ["wsgi.input"] = stream
        limit = self.flask.config.get("MAX_CONTENT_LENGTH")
        if length is None and limit is not None:
            body = _read_up_to(stream, limit + 1)
            if len(body) > limit:
                environ[OVER_LIMIT] = True
                body = b""
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        response = self.wsgi_app(environ, start_response)
        # Other servers give no socket: there the deadline is checked between reads.
        sock = environ.get("gunicorn.socket")
        if not isinstance(sock, socket.socket):
            sock = None
        return _Drained(response, stream, length, self.cap, self.seconds, sock)


class _Drained:
    """The app's response; closing it (after it is sent) drains the body."""

    def __init__(
        self,
        response: Iterable[bytes],
        stream: _CountingInput,
        length: int | None,
        cap: int,
        seconds: float,
        sock: socket.socket | None,
    ) -> None:
        self.response = response
        self.stream = stream
        self.length = length
        self.cap = cap
        self.seconds = seconds
        self.sock = sock

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.response)

    def close(self) -> None:
        try:
            if hasattr(self.response, "close"):
                self.response.close()
        finally:
            self._drain()

    def _drain(self) -> None:
        if self.length is not None and self.length > self.cap:
            return  # too big to read politely: the server closes the connection
        if self.stream.ended or self.stream.consumed == self.length:
            return  # the app read it all: nothing to wait for, no timer to start
        deadline = time.monotonic() + self.seconds
        timer = None
        if self.sock is not None:
            timer = threading.Timer(self.seconds, _stop_reading, args=(self.sock,))
            timer.daemon = True
            timer.start()
        try:
            while self.stream.consumed < self.cap and time.monotonic() < deadline:
                want = _CHUNK
                if self.length is not None:
                    want = min(want, self.length - self.stream.consumed)
                    if want <= 0:
                        return
                try:
                    data = self.stream.read(want)
                except OSError:
                    return  # the client went away, or the deadline shut the socket
                if not data:
                    return
        finally:
            if timer is not None:
                timer.cancel()


def _stop_reading(sock: socket.socket) -> None:
    # A blocked recv() returns at once with nothing, and so does every later one.
    # Should the drain have just finished, it is only a connection closed early.
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RD)


def init_app(app: Flask) -> None:
    @app.before_request
    def refuse_declared_oversize() -> None:
        # Werkzeug answers 413 only when a view reads the body; a declared length over
        # the limit is refused before any view runs, whatever the route.
        limit = request.max_content_length
        length = request.content_length
        too_big = limit is not None and length is not None and length > limit
        if too_big or request.environ.get(OVER_LIMIT):
            abort(413, description=f"The request body is larger than the limit, {limit} bytes.")

    app.wsgi_app = BodyLimit(app)  # type: ignore[method-assign]
