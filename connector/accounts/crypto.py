"""Encrypting tokens at rest with Fernet (cryptography): AES-128-CBC with HMAC-SHA256.

The key is CONNECTOR_ENCRYPTION_KEY (a Fernet key), or else derived from the
secret key with HKDF, so that a deployment that sets only the secret key still
encrypts, and one that rotates it deliberately sets a key of its own.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class DecryptionError(Exception):
    """The ciphertext was not made with this key (or was altered)."""


def derive_key(secret_key: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"connector token encryption")
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode()))


class TokenCipher:
    def __init__(self, key: bytes | str) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def from_config(cls, encryption_key: str | None, secret_key: str) -> TokenCipher:
        return cls(encryption_key.encode() if encryption_key else derive_key(secret_key))

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, ciphertext: bytes) -> str:
        try:
            return self._fernet.decrypt(ciphertext).decode()
        except InvalidToken as exc:
            raise DecryptionError("the token cannot be decrypted with this key") from exc
