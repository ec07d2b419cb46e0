"""RSA keys for the fakes, made once per test session and handed out in turn.

A 2048-bit key takes 50 to 300 ms to make on a small machine, and the fakes take two or
three per test: over 300 in a run. A few keys handed out in turn cost that only once.
Keys taken one after another are distinct (a fake's `other_key`, the forger's, is never its
signing `key`); fakes made far apart in the session may share one, which no test relies on
being otherwise (every forged token in the suite is signed with the same fake's other key).
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

# More than any one test takes at a time (FakeGoogle 2, FakeEntra 2, a TLS certificate 1).
POOL_SIZE = 8

_keys: list[Any] = []
_turn = itertools.count()
_lock = threading.Lock()


def rsa_key() -> Any:
    """The next 2048-bit RSA private key of the pool (made on first use)."""
    with _lock:
        index = next(_turn) % POOL_SIZE
        while len(_keys) <= index:
            _keys.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return _keys[index]
