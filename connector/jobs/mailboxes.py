"""Polling the IMAP mailboxes of aliases: every minute the worker queues a poll of each
mailbox (`poll_due`); a poll (`poll_mailbox`, or `connector mailboxes poll` at once) stores
the folder's new messages and hands each to routing.

Nothing is lost or stored twice across restarts: a batch's rows and the mailbox's new last
UID are committed together, so a poll that dies before its commit fetches the batch again
next time, and one that dies after it starts above it. Routing is queued after the commit;
should the worker die in between, routing's own sweep takes up the rows still received.
The \\Seen flag (and a keyword) set on the server afterwards is for people reading the
mailbox; correctness rests on the stored last UID, not on flags.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from connector.accounts.crypto import DecryptionError, TokenCipher
from connector.db import session_scope
from connector.jobs.queue import queue_of
from connector.mail.mailboxes import (
    ImapUrl,
    begin_epoch,
    lock_mailbox,
    mailbox_password,
    parse_imap_url,
    record_poll,
    store_fetched,
)
from connector.mail.models import InboundStatus, Mailbox
from connector.orm import utcnow
from connector.providers.mail.imap import ImapError, ImapFolder, open_folder

log = logging.getLogger(__name__)

# Messages fetched and committed at a time: a crash repeats at most one batch's fetch.
BATCH_SIZE = 50
# A mailbox whose last poll failed (a wrong password, a server down) is queued again only
# this long after it, not every minute; Huey's retries of the failed job come before that.
RETRY_FAILING_AFTER = dt.timedelta(minutes=5)


class MailboxPollFailed(Exception):
    """The poll could not finish; why is also kept on the mailbox (`mailboxes list`)."""


@dataclass(frozen=True)
class PollResult:
    mailbox_id: int
    stored: int  # rows stored by this poll
    passed_over: int  # fetched but stored already (an earlier incarnation of the folder)
    uidvalidity: int
    last_uid: int


def cipher_of(app: Flask) -> TokenCipher:
    return TokenCipher.from_config(app.config["ENCRYPTION_KEY"], app.config["SECRET_KEY"])


def poll(app: Flask, mailbox_id: int) -> PollResult | None:
    """Poll one mailbox now; None when it is gone. MailboxPollFailed when the server cannot
    be reached or refuses, after keeping the reason on the mailbox."""
    with session_scope(app) as session:
        mailbox = session.get(Mailbox, mailbox_id)
        if mailbox is None:
            return None
        url = parse_imap_url(mailbox.imap_url)
        try:
            password = mailbox_password(mailbox, cipher_of(app))
        except DecryptionError:
            password = None
    if password is None:
        _fail(
            app,
            mailbox_id,
            "The stored password cannot be decrypted with this encryption key: "
            "delete the mailbox and add it again.",
        )
    assert password is not None
    try:
        with open_folder(
            url,
            password,
            timeout=app.config["MAIL_TIMEOUT_SECONDS"],
            ca_file=app.config["IMAP_CA_FILE"],
        ) as folder:
            result = _poll_folder(app, mailbox_id, url, folder)
    except ImapError as exc:
        _fail(app, mailbox_id, str(exc), exc)
    with session_scope(app) as session:
        mailbox = session.get(Mailbox, mailbox_id)
        if mailbox is not None:
            record_poll(mailbox, None)
    return result


def _fail(app: Flask, mailbox_id: int, message: str, cause: Exception | None = None) -> None:
    with session_scope(app) as session:
        mailbox = session.get(Mailbox, mailbox_id)
        if mailbox is not None:
            record_poll(mailbox, message)
    log.warning("Polling mailbox %s failed: %s", mailbox_id, message)
    raise MailboxPollFailed(message) from cause


def _poll_folder(app: Flask, mailbox_id: int, url: ImapUrl, folder: ImapFolder) -> PollResult:
    uidvalidity = folder.uidvalidity
    with session_scope(app) as session:
        mailbox = lock_mailbox(session, mailbox_id)
        if mailbox is None:
            return PollResult(mailbox_id, 0, 0, uidvalidity, 0)
        if mailbox.uidvalidity is not None and mailbox.uidvalidity != uidvalidity:
            log.warning(
                "Mailbox %s (%s): UIDVALIDITY %s is now %s; reading the folder again",
                mailbox_id,
                url,
                mailbox.uidvalidity,
                uidvalidity,
            )
        begin_epoch(mailbox, uidvalidity)
        after = mailbox.last_uid
    uids = folder.uids_after(after)
    max_bytes = app.config["MAIL_MAX_MESSAGE_BYTES"]
    stored = passed_over = 0
    for start in range(0, len(uids), BATCH_SIZE):
        batch = uids[start : start + BATCH_SIZE]
        fetched = folder.fetch(batch, max_bytes)
        try:
            with session_scope(app) as session:
                mailbox = lock_mailbox(session, mailbox_id)
                if mailbox is None or mailbox.uidvalidity != uidvalidity:
                    # Deleted meanwhile, or another poll saw yet another UIDVALIDITY: the
                    # next poll starts from what is stored then.
                    break
                before = mailbox.last_uid
                rows = store_fetched(session, mailbox, uidvalidity, fetched, max_bytes=max_bytes)
                to_route = [row.id for row in rows if row.status == InboundStatus.RECEIVED]
                passed_over += sum(1 for f in fetched if f.uid > before) - len(rows)
        except IntegrityError:
            # A poll of the same mailbox running at once stored these first (the unique
            # UID per mailbox and UIDVALIDITY); this one's transaction is rolled back whole.
            log.info("Mailbox %s: another poll stored UIDs %s..%s", mailbox_id, batch[0], batch[-1])
            continue
        stored += len(rows)
        _route(app, to_route)
        try:
            # Not one left on the server for being too large: unread, people notice it.
            folder.mark_processed([f.uid for f in fetched if f.raw is not None])
        except ImapError as exc:
            # A courtesy to people reading the mailbox: the messages are stored all the same.
            log.warning("Mailbox %s: could not flag messages as processed: %s", mailbox_id, exc)
    with session_scope(app) as session:
        last_uid = session.scalar(select(Mailbox.last_uid).where(Mailbox.id == mailbox_id))
    return PollResult(mailbox_id, stored, passed_over, uidvalidity, last_uid or 0)


def _route(app: Flask, inbound_ids: list[int]) -> None:
    jobs = queue_of(app)
    for inbound_id in inbound_ids:
        jobs.enqueue("route_inbound", inbound_id=inbound_id)


def poll_mailbox(app: Flask, *, mailbox_id: int) -> dict[str, int]:
    """The job: poll one mailbox; raising (the server down, a wrong password) makes Huey
    try again later."""
    result = poll(app, mailbox_id)
    if result is None:
        return {}
    log.info(
        "Mailbox %s: %s stored, %s passed over, last UID %s",
        mailbox_id,
        result.stored,
        result.passed_over,
        result.last_uid,
    )
    return {"stored": result.stored, "passed_over": result.passed_over}


def due_mailboxes(app: Flask, now: dt.datetime | None = None) -> list[int]:
    """Every mailbox, but those whose last poll failed less than RETRY_FAILING_AFTER ago."""
    now = now or utcnow()
    due = []
    with session_scope(app) as session:
        for mailbox_id, polled_at, error in session.execute(
            select(Mailbox.id, Mailbox.last_polled_at, Mailbox.last_error).order_by(Mailbox.id)
        ):
            if error and polled_at is not None:
                if polled_at.tzinfo is None:  # SQLite gives naive datetimes back; they are UTC
                    polled_at = polled_at.replace(tzinfo=dt.UTC)
                if now - polled_at < RETRY_FAILING_AFTER:
                    continue
            due.append(mailbox_id)
    return due


def poll_due(app: Flask) -> None:
    """Every minute (and as the worker starts): queue a poll of each mailbox that is due."""
    jobs = queue_of(app)
    for mailbox_id in due_mailboxes(app):
        jobs.enqueue("poll_mailbox", mailbox_id=mailbox_id)


JOBS: dict[str, Callable[..., Any]] = {"poll_mailbox": poll_mailbox}
# Run by the worker every minute, and once as it starts: each takes the app.
PERIODIC: list[Callable[[Flask], None]] = [poll_due]
