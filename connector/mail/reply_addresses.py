"""Reply addresses: the address at the organization's mail domain that names one record,
"reply+t1234-k3j5x7q2mz4a@example.com", so that an answer finds its record even when the
mail client kept neither In-Reply-To nor the subject's number.

The part after the dash is an HMAC of the organization, the record's type and its id under
a key derived from the secret key: knowing one reply address does not let anyone write on
another record. Letters and digits only, lower case: mail servers may change the case of a
local part, and some drop punctuation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from connector.records.models import RecordType
from connector.records.refs import RecordRef

LOCAL_PREFIX = "reply+"
_CODES = {
    RecordType.LEAD: "l",
    RecordType.TICKET: "t",
    RecordType.CONTACT: "c",
    RecordType.COMPANY: "o",
}
_TYPES = {code: record_type for record_type, code in _CODES.items()}
# 10 bytes of HMAC: 80 bits, 16 base32 characters.
_SIGNATURE_BYTES = 10
_LOCAL = re.compile(r"reply\+([lcot])(\d{1,12})-([a-z2-7]{16})", re.IGNORECASE)


def _signature(secret_key: str, org_id: int, ref: RecordRef) -> str:
    key = hashlib.sha256(b"connector reply address\x00" + secret_key.encode()).digest()
    message = f"{org_id}:{ref.type.value}:{ref.id}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
    return base64.b32encode(digest).decode().lower()


def reply_address(secret_key: str, org_id: int, mail_domain: str, ref: RecordRef) -> str:
    """The record's reply address at the organization's mail domain."""
    code = _CODES[ref.type]
    signature = _signature(secret_key, org_id, ref)
    return f"{LOCAL_PREFIX}{code}{ref.id}-{signature}@{mail_domain}"


def looks_like_reply_address(address: str) -> bool:
    """Has the shape of a reply address (signature not checked)."""
    return _LOCAL.fullmatch(address.partition("@")[0]) is not None


def record_of_reply_address(secret_key: str, org_id: int, address: str) -> RecordRef | None:
    """The record a reply address of this organization names; None when the address is not
    one, or its signature is wrong (guessed, or made for another organization)."""
    match = _LOCAL.fullmatch(address.strip().partition("@")[0])
    if match is None:
        return None
    ref = RecordRef(_TYPES[match.group(1).lower()], int(match.group(2)))
    expected = _signature(secret_key, org_id, ref)
    return ref if hmac.compare_digest(expected, match.group(3).lower()) else None
