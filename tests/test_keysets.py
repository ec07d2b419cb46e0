"""The cached key sets behind token verification: fetched once, refetched with restraint."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from connector import keysets
from connector.keysets import KeySetUnavailable, RemoteKeySet


class FakeResponse:
    def __init__(self, body: Any, cache_control: str = "", status: int = 200) -> None:
        self._body, self.status_code = body, status
        self.headers = {"Cache-Control": cache_control} if cache_control else {}

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise requests.HTTPError(str(self.status_code))

    def json(self) -> Any:
        return self._body


def test_fetched_once_and_refetched_for_an_unknown_key_at_most_once_a_minute(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(keysets.time, "monotonic", lambda: clock[0])
    fetches: list[str] = []

    def fetch(url: str) -> FakeResponse:
        fetches.append(url)
        return FakeResponse({"k1": "cert"}, "public, max-age=3600")

    keys = RemoteKeySet("https://idp.test/keys", dict, 60, fetch)
    assert keys.get("k1") == {"k1": "cert"}
    assert keys.get("k1") == {"k1": "cert"}
    assert len(fetches) == 1
    keys.get("forged")  # unknown, but fetched less than a minute ago
    assert len(fetches) == 1
    clock[0] += 61
    keys.get("forged")
    assert len(fetches) == 2
    clock[0] += 3600
    keys.get("k1")  # past max-age
    assert len(fetches) == 3


def test_unavailable_keys_raise() -> None:
    failing = RemoteKeySet("u", dict, 60, lambda url: FakeResponse({}, status=503))
    with pytest.raises(KeySetUnavailable):
        failing.get(None)
    malformed = RemoteKeySet("u", dict, 60, lambda url: FakeResponse(["not", "a", "dict"]))
    with pytest.raises(KeySetUnavailable):
        malformed.get(None)
