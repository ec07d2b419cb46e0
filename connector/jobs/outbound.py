"""Sending the connector's own mail (OutboundMail rows: acknowledgments now, messages from
records next), through CONNECTOR_SMTP_URL, DKIM-signed when a key is configured.

Whoever writes a row commits it, then enqueues "send_outbound" for it. The job claims the
row (so two jobs never send the same row at once), signs and sends it, and records how it
went: sent; failed for good (the server refused it with 5xx, or the last try failed); or,
after a temporary failure, still queued, the job raising so that Huey tries again.

Sending is at least once, never at most once: a worker killed after the server's 250 and
before our commit leaves the row queued, and it is sent again once its claim lapses. A
second copy of an acknowledgment is better than none, and nothing can make the server's
acceptance and our commit one step.

A configuration that cannot send (CONNECTOR_SMTP_URL unset or wrong, the DKIM key
unreadable) costs no try: the rows stay queued with the reason, and go out once it is
right and the worker restarts (`requeue_unsent` picks them up).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from flask import Flask
from sqlalchemy import CursorResult, and_, or_, select, update
from sqlalchemy.orm import Session

from connector.db import session_scope
from connector.jobs.queue import queue_of
from connector.mail.acknowledgments import KIND as ACKNOWLEDGMENT
from connector.mail.models import OutboundMail, OutboundStatus
from connector.orm import utcnow
from connector.providers.mail import dkim
from connector.providers.mail.smtp import (
    PermanentFailure,
    SmtpConfigError,
    SmtpTarget,
    TemporaryFailure,
    parse_smtp_url,
    send_message,
    tls_context,
)

log = logging.getLogger(__name__)

# Huey runs a job once and retries it 3 times (connector.jobs.engine.RETRIES): the fourth
# try that fails temporarily ends the row as failed, rather than raising into nothing.
MAX_ATTEMPTS = 4
# An acknowledgment not sent within a day is not sent: that late it would only confuse.
ACKNOWLEDGMENT_MAX_AGE = dt.timedelta(days=1)
# A new row's own job takes it within seconds; one unclaimed for longer lost its job (the
# enqueue after the commit failed, or the process died in between).
UNCLAIMED_GRACE = dt.timedelta(minutes=2)
# Huey's retries come 10, 20 and 40 s after a try: a row whose last try ended longer ago
# than this, still queued, lost its retry.
LOST_RETRY_AFTER = dt.timedelta(minutes=5)
# Where the per-process state lives in app.extensions.
_WARNED = "connector.outbound_warned"
_STARTED = "connector.outbound_requeue_started"


class RetryLater(Exception):
    """A temporary failure: raised so that Huey tries the job again."""


@dataclass(frozen=True)
class Sending:
    """How to send, from the configuration."""

    target: SmtpTarget
    timeout: float
    ca_file: str | None
    key: dkim.DkimKey | None

    @property
    def claim(self) -> dt.timedelta:
        """How long a try may hold its row: each wait of the conversation (connect,
        greeting, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, its end, QUIT) up to the timeout."""
        return dt.timedelta(seconds=self.timeout * 10 + 60)


def sending_setup(config: dict[str, Any]) -> Sending | None:
    """How to send; None when CONNECTOR_SMTP_URL is unset. SmtpConfigError or
    dkim.DkimKeyError when the configuration is wrong."""
    if not config.get("SMTP_URL"):
        return None
    target = parse_smtp_url(config["SMTP_URL"])
    ca_file = config.get("SMTP_CA_FILE")
    if target.tls != "none" and ca_file:
        tls_context(ca_file)  # read now: a wrong path is a configuration error, said once
    selector, key_file = config.get("DKIM_SELECTOR"), config.get("DKIM_KEY_FILE")
    if bool(selector) != bool(key_file):
        raise dkim.DkimKeyError(
            "Set both CONNECTOR_DKIM_SELECTOR and CONNECTOR_DKIM_KEY_FILE, or neither"
        )
    key = dkim.load_key(selector, key_file) if selector and key_file else None
    return Sending(target, float(config["MAIL_TIMEOUT_SECONDS"]), ca_file, key)


def _warn_once(app: Flask, message: str, level: int = logging.WARNING) -> None:
    warned: set[str] = app.extensions.setdefault(_WARNED, set())
    if message not in warned:
        warned.add(message)
        log.log(level, "%s", message)


def _setup_or_warn(app: Flask) -> Sending | str:
    """How to send, or why nothing can be sent (said in the log once per process)."""
    try:
        setup = sending_setup(app.config)
    except (SmtpConfigError, dkim.DkimKeyError) as exc:
        _warn_once(app, f"Outbound mail kept queued: {exc}", logging.ERROR)
        return str(exc)
    if setup is None:
        _warn_once(app, "Outbound mail kept queued: set CONNECTOR_SMTP_URL to send it")
        return "CONNECTOR_SMTP_URL is not set"
    return setup


def _finish(
    app: Flask,
    outbound_id: int,
    status: OutboundStatus,
    *,
    error: str | None,
    sent_at: dt.datetime | None = None,
) -> None:
    with session_scope(app) as session:
        row = session.get(OutboundMail, outbound_id)
        if row is None:
            return
        row.status = status
        row.error = error
        row.sent_at = sent_at
        # The try is over: the claim now says when it ended (see requeue_unsent).
        row.claimed_until = utcnow()


def _claim(session: Session, row: OutboundMail, now: dt.datetime, claim: dt.timedelta) -> bool:
    """Take the row for one try, counting it; False when another job holds it."""
    result = session.execute(
        update(OutboundMail)
        .where(
            OutboundMail.id == row.id,
            OutboundMail.status == OutboundStatus.QUEUED,
            or_(OutboundMail.claimed_until.is_(None), OutboundMail.claimed_until <= now),
        )
        .values(claimed_until=now + claim, attempts=OutboundMail.attempts + 1, error=None)
        .execution_options(synchronize_session=False)
    )
    return cast(CursorResult[Any], result).rowcount == 1


def send_outbound(app: Flask, *, outbound_id: int) -> None:
    """Send the OutboundMail row, if it is still queued."""
    setup = _setup_or_warn(app)
    if isinstance(setup, str):
        with session_scope(app) as session:
            row = session.get(OutboundMail, outbound_id)
            if row is not None and row.status == OutboundStatus.QUEUED:
                row.error = f"kept queued: {setup}"
        return
    now = utcnow()
    with session_scope(app) as session:
        row = session.get(OutboundMail, outbound_id)
        if row is None or row.status != OutboundStatus.QUEUED:
            return
        created = row.created_at
        if created.tzinfo is None:  # SQLite gives naive datetimes back; they are UTC
            created = created.replace(tzinfo=dt.UTC)
        if row.kind == ACKNOWLEDGMENT and created < now - ACKNOWLEDGMENT_MAX_AGE:
            row.status = OutboundStatus.FAILED
            row.error = "not sent within a day: too late to acknowledge"
            return
        if not _claim(session, row, now, setup.claim):
            return
        session.commit()  # the claim and the try it counts hold even if the process dies
        session.refresh(row)
        raw, envelope_from, recipients = row.raw, row.from_address, list(row.to_addresses)
        attempts = row.attempts
    try:
        message = dkim.sign(raw, setup.key) if setup.key else raw
        answer = send_message(
            setup.target,
            envelope_from=envelope_from,
            recipients=recipients,
            message=message,
            timeout=setup.timeout,
            ca_file=setup.ca_file,
        )
    except (PermanentFailure, dkim.DkimKeyError) as exc:
        error = exc.answer if isinstance(exc, PermanentFailure) else f"not signed: {exc}"
        log.warning("Outbound mail %s refused for good: %s", outbound_id, error)
        _finish(app, outbound_id, OutboundStatus.FAILED, error=error)
        return
    except TemporaryFailure as exc:
        if attempts >= MAX_ATTEMPTS:
            log.warning("Outbound mail %s failed after %s tries: %s", outbound_id, attempts, exc)
            _finish(app, outbound_id, OutboundStatus.FAILED, error=f"after {attempts} tries: {exc}")
            return
        _finish(app, outbound_id, OutboundStatus.QUEUED, error=exc.answer)
        raise RetryLater(f"outbound mail {outbound_id}, try {attempts}: {exc.answer}") from exc
    # A worker killed here, after the server's 250 and before this commit, leaves the row
    # queued: it is sent again once its claim lapses (at least once, never lost).
    log.info("Outbound mail %s sent: %s", outbound_id, answer)
    _finish(app, outbound_id, OutboundStatus.SENT, error=None, sent_at=utcnow())


def requeue_unsent(app: Flask) -> None:
    """The worker's every-minute call: requeue_lost."""
    requeue_lost(app)


def requeue_lost(app: Flask) -> list[int]:
    """Queue again the rows whose job was lost: every queued row not being sent when the
    worker starts (a killed worker's), then, every minute, rows unclaimed for longer than
    UNCLAIMED_GRACE or whose last try ended longer than LOST_RETRY_AFTER ago. The ids
    queued."""
    if isinstance(_setup_or_warn(app), str):
        return []
    first = not app.extensions.get(_STARTED)
    app.extensions[_STARTED] = True
    now = utcnow()
    free = or_(OutboundMail.claimed_until.is_(None), OutboundMail.claimed_until <= now)
    lost = or_(
        and_(
            OutboundMail.claimed_until.is_(None),
            OutboundMail.created_at < now - UNCLAIMED_GRACE,
        ),
        OutboundMail.claimed_until < now - LOST_RETRY_AFTER,
    )
    with session_scope(app) as session:
        ids = list(
            session.scalars(
                select(OutboundMail.id)
                .where(OutboundMail.status == OutboundStatus.QUEUED, free if first else lost)
                .order_by(OutboundMail.id)
            )
        )
    if ids:
        jobs = queue_of(app)
        for outbound_id in ids:
            jobs.enqueue("send_outbound", outbound_id=outbound_id)
        log.info("Queued %s unsent outbound mails again", len(ids))
    return ids


JOBS: dict[str, Callable[..., Any]] = {"send_outbound": send_outbound}
# Run by the worker every minute, and once as it starts: each takes the app.
PERIODIC: list[Callable[[Flask], None]] = [requeue_unsent]
