"""DKIM: signing what the connector sends (dkimpy), and the DNS records an organization
publishes so that receivers trust its mail (SPF, DKIM, DMARC).

One key (CONNECTOR_DKIM_KEY_FILE, a PEM private key) and one selector
(CONNECTOR_DKIM_SELECTOR) serve every organization: each publishes the same public key
under `<selector>._domainkey.<its mail domain>`, and a message is signed for the domain of
its From address, so that DMARC's alignment holds.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.utils import parseaddr

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# The headers a signature covers (those of them the message has): what a reader sees and
# what threads it. Received, Return-Path and the like are added on the way and left out.
SIGNED_HEADERS = (
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    # RFC 8058: a one-click unsubscribe is honoured only when the signature covers both.
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Reply-To",
    "Auto-Submitted",
    "MIME-Version",
    "Content-Type",
)
# A DNS TXT record is made of strings of at most 255 bytes each; a 2048-bit key's p= is
# longer, so it is split (resolvers join them back).
TXT_STRING_MAX = 255
MAKE_KEY = "openssl genrsa -out dkim.pem 2048"
# DNS labels, dot-separated ("connector", "2026.connector").
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_SELECTOR = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


class DkimKeyError(ValueError):
    """CONNECTOR_DKIM_KEY_FILE cannot be read as a private key to sign with."""


@dataclass(frozen=True)
class DkimKey:
    selector: str
    pem: bytes
    # "rsa": the k= of the DNS record.
    kind: str
    # The public half as DNS wants it in p=, base64.
    public_base64: str


def load_key(selector: str, path: str) -> DkimKey:
    """The signing key of CONNECTOR_DKIM_KEY_FILE, or DkimKeyError saying why not."""
    if not _SELECTOR.fullmatch(selector):
        raise DkimKeyError(f"CONNECTOR_DKIM_SELECTOR {selector!r} is not a DNS label")
    try:
        with open(path, "rb") as file:
            pem = file.read()
    except OSError as exc:
        raise DkimKeyError(
            f"CONNECTOR_DKIM_KEY_FILE {path!r} cannot be read: {exc.strerror or exc}"
        ) from None
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise DkimKeyError(
            f"CONNECTOR_DKIM_KEY_FILE {path!r} is not an unencrypted PEM private key "
            f"(make one with `{MAKE_KEY}`): {exc}"
        ) from None
    if isinstance(private, rsa.RSAPrivateKey):
        if private.key_size < 1024:
            raise DkimKeyError(
                f"CONNECTOR_DKIM_KEY_FILE holds a {private.key_size}-bit RSA key: receivers "
                "ignore signatures of keys under 1024 bits (2048 is usual)"
            )
        public = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # dkimpy reads RSA keys in the traditional (PKCS#1) PEM form or PKCS#8; it is given
        # PKCS#1, which `openssl genrsa` of OpenSSL 1.x also writes.
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        return DkimKey(selector, pem, "rsa", base64.b64encode(public).decode())
    # Ed25519 signatures (RFC 8463) are not yet checked by many receivers, so RSA alone.
    raise DkimKeyError(
        f"CONNECTOR_DKIM_KEY_FILE {path!r} holds no RSA key (make one with `{MAKE_KEY}`)"
    )


def from_domain(message: bytes) -> str:
    """The domain of the message's From address ("" when it has none)."""
    headers = BytesHeaderParser().parsebytes(message)
    _, address = parseaddr(str(headers.get("From", "")))
    return address.rpartition("@")[2].lower() if "@" in address else ""


def sign(message: bytes, key: DkimKey) -> bytes:
    """The message with a DKIM-Signature header in front, for the domain of its From,
    relaxed/relaxed (what survives relays that rewrap headers or trailing spaces)."""
    domain = from_domain(message)
    if not domain:
        raise DkimKeyError("the message has no From address to sign for")
    present = {name.lower() for name in BytesHeaderParser().parsebytes(message)}
    headers = [name.encode() for name in SIGNED_HEADERS if name.lower() in present]
    signature = dkim.sign(
        message,
        key.selector.encode(),
        domain.encode(),
        key.pem,
        canonicalize=(b"relaxed", b"relaxed"),
        signature_algorithm=b"rsa-sha256",
        include_headers=headers,
    )
    return bytes(signature) + message


def _txt(value: str) -> str:
    """A TXT record's value as zone-file strings of at most 255 characters each."""
    chunks = [value[i : i + TXT_STRING_MAX] for i in range(0, len(value), TXT_STRING_MAX)]
    return " ".join(f'"{chunk}"' for chunk in chunks)


def dkim_txt_value(key: DkimKey) -> str:
    return f"v=DKIM1; k={key.kind}; p={key.public_base64}"


def _spf_term(host: str) -> str | None:
    """The SPF term allowing the SMTP server: a: for a name, ip4:/ip6: for an address, none
    for a loopback or private address (the world sees the relay's public one)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"a:{host}"
    if address.is_loopback or address.is_private or address.is_link_local:
        return None
    return f"ip{address.version}:{address}"


def dns_records(domain: str, *, smtp_host: str | None, key: DkimKey | None) -> list[str]:
    """What to publish for `domain`, as zone-file lines with comments (";") saying why."""
    zone = domain.rstrip(".") + "."
    lines = ["; SPF: the servers that may send mail from this domain: its MX, and"]
    term = _spf_term(smtp_host) if smtp_host else None
    if term:
        lines.append(f"; the server of CONNECTOR_SMTP_URL ({smtp_host}); ~all marks the others.")
        lines.append(f'{zone} IN TXT "v=spf1 mx {term} ~all"')
    elif smtp_host:
        lines.append(f"; CONNECTOR_SMTP_URL names a relay at a local address ({smtp_host}): add")
        lines.append("; the public address it sends from (ip4:, ip6:) or its provider's include:.")
        lines.append(f'{zone} IN TXT "v=spf1 mx ~all"')
    else:
        lines.append("; the server the connector sends through: set CONNECTOR_SMTP_URL to name")
        lines.append("; it (until then only the MX is listed); ~all marks the others.")
        lines.append(f'{zone} IN TXT "v=spf1 mx ~all"')
    lines.append(
        "; If the domain has an SPF record already, add the terms to it instead: a domain has one."
    )
    lines.append("")
    if key is None:
        lines += [
            "; DKIM: not configured, so the connector's mail goes out unsigned. Make a key",
            f";   {MAKE_KEY}",
            "; keep it private to the connector's machines, and set",
            ";   CONNECTOR_DKIM_SELECTOR=connector  CONNECTOR_DKIM_KEY_FILE=/path/to/dkim.pem",
            "; then run this command again for the record to publish.",
        ]
    else:
        lines += [
            f"; DKIM: the public key that checks the signatures (selector {key.selector}).",
            f"{key.selector}._domainkey.{zone} IN TXT {_txt(dkim_txt_value(key))}",
        ]
    lines += [
        "",
        "; DMARC: receivers quarantine mail from this domain that neither SPF nor DKIM",
        "; vouch for (aligned to the From domain), and send reports to postmaster@.",
        "; Start with p=none to watch the reports first if other systems send as this domain.",
        f'_dmarc.{zone} IN TXT "v=DMARC1; p=quarantine; adkim=s; aspf=s; '
        f'rua=mailto:postmaster@{domain.rstrip(".")}"',
    ]
    return lines
