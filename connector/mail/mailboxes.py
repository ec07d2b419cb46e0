"""IMAP mailboxes polled for an alias: adding, listing, deleting them, and storing what a poll
fetched (the IMAP conversation itself is connector.providers.mail.imap's).

A mailbox's URL names the server, the login and the folder, never the password:
`imap://user@host[:143]/FOLDER` speaks plain IMAP (loopback and tests only),
`imap+starttls://` requires STARTTLS on port 143, `imaps://` is implicit TLS on 993. The
password is kept encrypted (accounts.crypto), as linked accounts' tokens are.
"""

from __future__ import annotations

import email.parser
import email.policy
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connector.accounts.crypto import TokenCipher
from connector.activities.mime import normalize_message_id
from connector.errors import Conflict, InvalidInput, NotFound
from connector.mail.aliases import alias_for_address
from connector.mail.models import InboundMessage, InboundStatus, Mailbox
from connector.orgs.models import Organization
from connector.orm import utcnow


class Security(enum.StrEnum):
    PLAIN = "plain"  # imap://: no TLS at all, for a server on loopback
    STARTTLS = "starttls"  # imap+starttls://: STARTTLS required before logging in
    TLS = "tls"  # imaps://: TLS from the first byte


_SCHEMES = {
    "imap": (Security.PLAIN, 143),
    "imap+starttls": (Security.STARTTLS, 143),
    "imaps": (Security.TLS, 993),
}


@dataclass(frozen=True)
class ImapUrl:
    security: Security
    host: str
    port: int
    user: str
    folder: str

    def __str__(self) -> str:
        """The URL as stored: scheme, login (percent-encoded), host, port, folder."""
        scheme = next(name for name, (kind, _) in _SCHEMES.items() if kind == self.security)
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{quote(self.user, safe='')}@{host}:{self.port}/{quote(self.folder)}"


def _bad(url: str, why: str) -> InvalidInput:
    return InvalidInput(
        f"{url!r} is not an IMAP URL: {why}. Write imaps://USER@HOST/FOLDER "
        "(or imap+starttls://, or imap:// for a server on loopback).",
        {"imap_url": [why]},
    )


def parse_imap_url(url: str) -> ImapUrl:
    """imap[s]://user@host[:port][/FOLDER] -> ImapUrl; InvalidInput with the reason."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise _bad(url, str(exc)) from exc
    if parts.scheme.lower() not in _SCHEMES:
        raise _bad(url, "the scheme is imaps, imap+starttls or imap")
    security, default_port = _SCHEMES[parts.scheme.lower()]
    if not parts.hostname:
        raise _bad(url, "it names no host")
    if parts.password is not None:
        raise _bad(url, "the password goes in --password-file, not in the URL")
    if not parts.username:
        raise _bad(url, "it names no user (imaps://USER@HOST/FOLDER)")
    if parts.query or parts.fragment:
        raise _bad(url, "it has a query or a fragment")
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    if any(ord(c) < 32 for c in folder):
        raise _bad(url, "the folder name has control characters")
    return ImapUrl(
        security=security,
        host=parts.hostname,
        port=port or default_port,
        user=unquote(parts.username),
        folder=folder,
    )


def add_mailbox(
    session: Session,
    org: Organization,
    *,
    alias_address: str,
    imap_url: str,
    password: str,
    cipher: TokenCipher,
) -> Mailbox:
    """Poll an IMAP folder for an alias of the organization; InvalidInput or Conflict."""
    url = parse_imap_url(imap_url)
    alias = alias_for_address(session, alias_address)
    if alias is None or alias.organization_id != org.id:
        raise InvalidInput(
            f"{alias_address!r} is not an alias of {org.name} (connector aliases list shows them).",
            {"alias": ["unknown alias"]},
        )
    if not password:
        raise InvalidInput("The password is empty.", {"password": ["empty"]})
    stored = str(url)
    if session.scalar(select(Mailbox).where(Mailbox.imap_url == stored)) is not None:
        raise Conflict(f"{stored} is polled already: two polls of one folder would race.")
    mailbox = Mailbox(
        organization_id=org.id,
        alias_id=alias.id,
        imap_url=stored,
        password_encrypted=cipher.encrypt(password),
        last_uid=0,
    )
    session.add(mailbox)
    session.flush()
    return mailbox


def list_mailboxes(session: Session, org: Organization | None = None) -> list[Mailbox]:
    query = select(Mailbox).order_by(Mailbox.organization_id, Mailbox.id)
    if org is not None:
        query = query.where(Mailbox.organization_id == org.id)
    return list(session.scalars(query))


def get_mailbox(session: Session, mailbox_id: int) -> Mailbox:
    mailbox = session.get(Mailbox, mailbox_id)
    if mailbox is None:
        raise NotFound(f"There is no mailbox with id {mailbox_id}.")
    return mailbox


def delete_mailbox(session: Session, mailbox: Mailbox) -> None:
    """It is polled no more; what it fetched stays (its rows lose their mailbox)."""
    session.delete(mailbox)
    session.flush()


def mailbox_password(mailbox: Mailbox, cipher: TokenCipher) -> str:
    return cipher.decrypt(mailbox.password_encrypted)


# Storing what a poll fetched --------------------------------------------------------------


@dataclass(frozen=True)
class Fetched:
    """One message of the folder as a poll read it: its UID, and its bytes, or only its
    size when it is larger than the gateway takes (it is then left on the server)."""

    uid: int
    size: int
    raw: bytes | None


def lock_mailbox(session: Session, mailbox_id: int) -> Mailbox | None:
    """The mailbox, written to first so that this transaction holds it: a row lock on
    PostgreSQL, the write lock on SQLite. Two polls of one mailbox then take turns, and each
    reads where the other left off (populate_existing: not a stale copy)."""
    session.execute(
        update(Mailbox).where(Mailbox.id == mailbox_id).values(last_uid=Mailbox.last_uid)
    )
    return session.scalar(
        select(Mailbox).where(Mailbox.id == mailbox_id).execution_options(populate_existing=True)
    )


def begin_epoch(mailbox: Mailbox, uidvalidity: int) -> None:
    """The folder's UIDVALIDITY is not the one stored: its old UIDs mean nothing now, so
    polling starts over from the first UID of the new validity."""
    if mailbox.uidvalidity != uidvalidity:
        mailbox.uidvalidity = uidvalidity
        mailbox.last_uid = 0


def _message_id(raw: bytes) -> str | None:
    headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    value = headers.get("Message-ID")
    return normalize_message_id(str(value)) if value is not None else None


def _return_path(raw: bytes) -> str:
    headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    value = headers.get("Return-Path")
    return str(value).strip().strip("<>").strip()[:998] if value is not None else ""


def _earlier_message_ids(
    session: Session, mailbox: Mailbox, uidvalidity: int, candidates: set[str]
) -> set[str]:
    """Which of these Message-IDs this mailbox stored under an earlier UIDVALIDITY: a folder
    rebuilt on the server shows its old messages again under new UIDs."""
    if not candidates:
        return set()
    rows = session.scalars(
        select(InboundMessage.message_id).where(
            InboundMessage.mailbox_id == mailbox.id,
            InboundMessage.imap_uidvalidity != uidvalidity,
            InboundMessage.message_id.in_(candidates),
        )
    )
    return {row for row in rows if row is not None}


def store_fetched(
    session: Session,
    mailbox: Mailbox,
    uidvalidity: int,
    fetched: Sequence[Fetched],
    *,
    max_bytes: int,
) -> list[InboundMessage]:
    """Store the messages above the mailbox's last UID and move its last UID past them, in
    the caller's transaction (one commit makes both true, or neither). The mailbox must be
    locked (lock_mailbox) and in this UIDVALIDITY (begin_epoch). The rows stored, in order;
    a message whose Message-ID came in under an earlier UIDVALIDITY is passed over."""
    assert mailbox.uidvalidity == uidvalidity
    new = sorted((f for f in fetched if f.uid > mailbox.last_uid), key=lambda f: f.uid)
    if not new:
        return []
    message_ids = {f.uid: _message_id(f.raw) if f.raw is not None else None for f in new}
    seen_before = _earlier_message_ids(
        session, mailbox, uidvalidity, {m for m in message_ids.values() if m}
    )
    stored: list[InboundMessage] = []
    for item in new:
        message_id = message_ids[item.uid]
        if message_id is not None and message_id in seen_before:
            continue
        row = InboundMessage(
            organization_id=mailbox.organization_id,
            source="imap",
            mailbox_id=mailbox.id,
            imap_uidvalidity=uidvalidity,
            imap_uid=item.uid,
            recipients=[mailbox.alias.address],
            message_id=message_id,
            size=item.size,
        )
        if item.raw is None:
            # Kept in the list of failed mail (and left on the server), not lost unseen.
            row.raw = b""
            row.status = InboundStatus.FAILED
            row.error = (
                f"{item.size} bytes: larger than CONNECTOR_MAIL_MAX_MESSAGE_BYTES "
                f"({max_bytes}); left on the IMAP server, UID {item.uid}."
            )
            row.processed_at = utcnow()
        else:
            row.raw = item.raw
            row.envelope_from = _return_path(item.raw)
        session.add(row)
        stored.append(row)
    mailbox.last_uid = new[-1].uid
    session.flush()
    return stored


def record_poll(mailbox: Mailbox, error: str | None) -> None:
    """When the mailbox was last polled, and what went wrong (None: nothing)."""
    mailbox.last_polled_at = utcnow()
    mailbox.last_error = error[:2000] if error else None
