"""A failed send is "nothing was sent" only when the request never left; never sent twice."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import google.oauth2.credentials
import pytest
import requests

from connector.mailbox import SendUnconfirmed
from connector.outbound import never_reached
from connector.providers.google.gmail_api import GmailError
from connector.providers.google.sending import send_gmail


@contextmanager
def server(behaviour: str) -> Iterator[tuple[str, list[bytes]]]:
    """A loopback server that reads each request, then hangs up ("hang_up") or stalls."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    received: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    received.append(conn.recv(65536))
                except OSError:
                    continue
                if behaviour == "stall":
                    stop.wait(1.5)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", received
    finally:
        stop.set()
        thread.join()
        listener.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def failure(url: str, timeout: float = 0.5) -> requests.RequestException:
    with pytest.raises(requests.RequestException) as raised:
        requests.post(url, json={}, timeout=timeout)
    return raised.value


def test_a_refused_connection_never_reached_the_server() -> None:
    assert never_reached(failure(f"http://127.0.0.1:{closed_port()}/send"))


@pytest.mark.parametrize("behaviour", ["hang_up", "stall"])
def test_a_lost_answer_may_have_been_acted_on(behaviour) -> None:
    with server(behaviour) as (url, received):
        error = failure(url + "/send")
    assert received and not never_reached(error)


def credentials() -> google.oauth2.credentials.Credentials:
    return google.oauth2.credentials.Credentials(token="ya29.token")


def test_gmail_send_is_posted_once_when_the_connection_drops(monkeypatch) -> None:
    # httplib2 resent such a request by itself: the reply went out twice.
    with server("hang_up") as (url, received):
        with pytest.raises(SendUnconfirmed):
            send_gmail(url + "/", credentials(), "thread-1", b"Subject: hi\r\n\r\nx")
        time.sleep(0.3)  # a resend, if any, would have arrived by now
    assert len(received) == 1 and received[0].startswith(b"POST /gmail/v1/users/me/messages/send")


def test_gmail_unreachable_is_nothing_sent() -> None:
    with pytest.raises(GmailError) as raised:
        send_gmail(f"http://127.0.0.1:{closed_port()}/", credentials(), "t", b"x")
    assert not isinstance(raised.value, SendUnconfirmed)
