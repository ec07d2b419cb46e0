"""Signing keys fetched from an identity provider and cached (Google's certificates, Entra's JWKS).

Fetched on first use and kept until their max-age (Cache-Control, else a default)
runs out. A token naming a key we do not hold triggers one more fetch, at most
once a minute: providers rotate keys, and a stream of forged key IDs must not
turn into a stream of requests.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

MIN_REFETCH_SECONDS = 60


class KeySetUnavailable(Exception):
    """The keys could not be fetched or read."""


class RemoteKeySet:
    def __init__(
        self,
        url: str,
        parse: Callable[[Any], dict[str, Any]],
        default_max_age: int,
        fetch: Callable[[str], requests.Response] | None = None,
    ) -> None:
        self.url = url
        self._parse = parse
        self._default_max_age = default_max_age
        self._fetch = fetch or (lambda u: requests.get(u, timeout=5))
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        try:
            response = self._fetch(self.url)
            response.raise_for_status()
            keys = self._parse(response.json())
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            raise KeySetUnavailable(f"keys from {self.url} unavailable") from exc
        match = re.search(r"max-age=(\d+)", response.headers.get("Cache-Control", ""))
        now = time.monotonic()
        self._keys = keys
        self._fetched_at = now
        self._expires_at = now + (int(match.group(1)) if match else self._default_max_age)

    def get(self, key_id: str | None) -> Mapping[str, Any]:
        """The current keys, refetched when stale or when `key_id` is unknown (rate-limited)."""
        with self._lock:
            now = time.monotonic()
            fetched_at = self._fetched_at
            unknown = key_id is not None and key_id not in self._keys
            may_refetch = fetched_at is None or now - fetched_at > MIN_REFETCH_SECONDS
            if fetched_at is None or now >= self._expires_at or (unknown and may_refetch):
                self._refresh()
            return dict(self._keys)
