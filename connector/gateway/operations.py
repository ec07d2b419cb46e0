"""What operations need around the gateway: whether the gateway and the worker are alive,
the mail that waits or failed, and putting it back on its way (`connector mail
queue|failed|retry|held`, /readyz)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any, Literal

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connector.audit import service as audit
from connector.gateway.server import HEARTBEAT_NAME, HEARTBEAT_SECONDS
from connector.jobs import get_jobs
from connector.jobs.tasks import WORKER_HEARTBEAT
from connector.mail.models import (
    Heartbeat,
    InboundMessage,
    InboundStatus,
    OutboundMail,
    OutboundStatus,
)
from connector.orgs.models import User

log = logging.getLogger(__name__)

# A process is "up" while its last heartbeat is younger than this: three of the gateway's
# beats, two and a half of the worker's (it beats with its every-minute functions).
FRESH_SECONDS = {HEARTBEAT_NAME: 3 * HEARTBEAT_SECONDS, WORKER_HEARTBEAT: 150.0}
# The head of a raw message read for a subject that routing has not filled in yet.
HEAD_BYTES = 16384

Direction = Literal["in", "out"]
INBOUND_WAITING = (InboundStatus.RECEIVED, InboundStatus.HELD, InboundStatus.FAILED)
OUTBOUND_WAITING = (OutboundStatus.QUEUED, OutboundStatus.FAILED)


def _aware(moment: dt.datetime) -> dt.datetime:
    # SQLite gives naive datetimes back; they are UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def age(moment: dt.datetime, now: dt.datetime) -> str:
    """How long ago, as people say it: "12 s", "4 min", "3 h", "2 d"."""
    seconds = max(0, int((now - _aware(moment)).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def heartbeat_states(session: Session, now: dt.datetime) -> dict[str, str]:
    """ "up, seen 12 s ago", "down, last seen 3 h ago" or "not seen", for the gateway and
    the worker."""
    beats = {beat.name: beat for beat in session.scalars(select(Heartbeat))}
    states = {}
    for key, name in (("gateway", HEARTBEAT_NAME), ("worker", WORKER_HEARTBEAT)):
        beat = beats.get(name)
        if beat is None:
            states[key] = "not seen"
            continue
        seen = _aware(beat.seen_at)
        fresh = (now - seen).total_seconds() <= FRESH_SECONDS[name]
        states[key] = (
            f"up, seen {age(seen, now)} ago" if fresh else f"down, last seen {age(seen, now)} ago"
        )
    return states


def queue_counts(session: Session) -> dict[str, dict[str, int]]:
    """How many messages wait or failed, each way (done and sent ones are not counted: the
    status index answers without reading them)."""
    inbound = dict(
        session.execute(
            select(InboundMessage.status, func.count())
            .where(InboundMessage.status.in_(INBOUND_WAITING))
            .group_by(InboundMessage.status)
        ).all()
    )
    outbound = dict(
        session.execute(
            select(OutboundMail.status, func.count())
            .where(OutboundMail.status.in_(OUTBOUND_WAITING))
            .group_by(OutboundMail.status)
        ).all()
    )
    return {
        "inbound": {str(status): int(inbound.get(status, 0)) for status in INBOUND_WAITING},
        "outbound": {str(status): int(outbound.get(status, 0)) for status in OUTBOUND_WAITING},
    }


def mail_status(session: Session, now: dt.datetime) -> dict[str, Any]:
    """The gateway, the worker and the queues, for /readyz."""
    return {**heartbeat_states(session, now), **queue_counts(session)}


@dataclass(frozen=True)
class QueuedMail:
    """A message that waits or failed, either way, as the commands list it."""

    direction: Direction
    id: int
    org_id: int
    status: str
    at: dt.datetime
    sender: str
    recipients: list[str]
    subject: str
    attempts: int
    error: str | None

    @property
    def key(self) -> str:
        """How the commands name it: "in:12", "out:5" (both tables count from 1)."""
        return f"{self.direction}:{self.id}"


def _head_subject(head: bytes | None) -> str:
    """The Subject of a raw message's head, decoded; "" when there is none."""
    if not head:
        return ""
    try:
        message = BytesHeaderParser(policy=compat32).parsebytes(bytes(head))
        value = message.get("Subject")
        return "" if value is None else " ".join(str(make_header(decode_header(value))).split())
    except Exception:  # a header no decoder reads is still listed, without its subject
        return ""


def list_inbound(
    session: Session,
    statuses: Sequence[InboundStatus],
    *,
    org_id: int | None = None,
    limit: int | None = None,
) -> list[QueuedMail]:
    """Inbound messages in these states, oldest first. Before routing, sender and subject
    are not filled in yet: the envelope's sender and the message's own Subject stand in."""
    query = (
        select(InboundMessage, func.substr(InboundMessage.raw, 1, HEAD_BYTES))
        .where(InboundMessage.status.in_(statuses))
        .order_by(InboundMessage.received_at, InboundMessage.id)
        .limit(limit)
    )
    if org_id is not None:
        query = query.where(InboundMessage.organization_id == org_id)
    return [
        QueuedMail(
            direction="in",
            id=row.id,
            org_id=row.organization_id,
            status=str(row.status),
            at=_aware(row.received_at),
            sender=row.sender or row.envelope_from or "<>",
            recipients=list(row.recipients or []),
            subject=row.subject or _head_subject(head),
            attempts=row.attempts,
            error=row.error,
        )
        for row, head in session.execute(query).all()
    ]


def list_outbound(
    session: Session,
    statuses: Sequence[OutboundStatus],
    *,
    org_id: int | None = None,
    limit: int | None = None,
) -> list[QueuedMail]:
    query = (
        select(OutboundMail)
        .where(OutboundMail.status.in_(statuses))
        .order_by(OutboundMail.created_at, OutboundMail.id)
        .limit(limit)
    )
    if org_id is not None:
        query = query.where(OutboundMail.organization_id == org_id)
    return [
        QueuedMail(
            direction="out",
            id=row.id,
            org_id=row.organization_id,
            status=str(row.status),
            at=_aware(row.created_at),
            sender=row.from_address,
            recipients=list(row.to_addresses or []),
            subject=row.subject,
            attempts=row.attempts,
            error=row.error,
        )
        for row in session.scalars(query)
    ]


class UnknownMail(ValueError):
    """An ID that names no message in the state asked for (or names two)."""


def resolve_keys(
    session: Session,
    keys: Iterable[str],
    inbound_status: InboundStatus,
    outbound_status: OutboundStatus | None,
) -> tuple[list[int], list[int]]:
    """The inbound and outbound ids that "in:12", "out:5" or a bare "12" name, among the
    messages in the given states. A bare number is the message that has it, in either
    table; when both have one, it must be said which."""
    inbound: list[int] = []
    outbound: list[int] = []
    for key in keys:
        direction, _, number = key.strip().lower().rpartition(":")
        if not number.isdigit() or direction not in ("", "in", "out"):
            raise UnknownMail(f"{key!r} is not a message ID (12, in:12 or out:5).")
        ident = int(number)
        found_in = (
            direction in ("", "in")
            and session.scalar(
                select(InboundMessage.id).where(
                    InboundMessage.id == ident, InboundMessage.status == inbound_status
                )
            )
            is not None
        )
        found_out = (
            outbound_status is not None
            and direction in ("", "out")
            and session.scalar(
                select(OutboundMail.id).where(
                    OutboundMail.id == ident, OutboundMail.status == outbound_status
                )
            )
            is not None
        )
        if found_in and found_out:
            raise UnknownMail(f"Both in:{ident} and out:{ident} are {inbound_status}: say which.")
        if not (found_in or found_out):
            states = str(inbound_status)
            raise UnknownMail(f"There is no {states} message {key.strip()}.")
        (inbound if found_in else outbound).append(ident)
    return sorted(set(inbound)), sorted(set(outbound))


def retry_inbound(session: Session, ids: Sequence[int]) -> list[int]:
    """Failed inbound messages back to "received", with their tries anew; the ids changed
    (queue their routing after the commit)."""
    rows = session.scalars(
        select(InboundMessage).where(
            InboundMessage.id.in_(ids), InboundMessage.status == InboundStatus.FAILED
        )
    ).all()
    for row in rows:
        row.status = InboundStatus.RECEIVED
        row.attempts = 0
        row.error = None
    session.flush()
    return sorted(row.id for row in rows)


def retry_outbound(session: Session, ids: Sequence[int]) -> list[int]:
    """Failed outgoing mail back to "queued", with its tries anew; the ids changed."""
    rows = session.scalars(
        select(OutboundMail).where(
            OutboundMail.id.in_(ids), OutboundMail.status == OutboundStatus.FAILED
        )
    ).all()
    for row in rows:
        row.status = OutboundStatus.QUEUED
        row.attempts = 0
        row.error = None
    session.flush()
    return sorted(row.id for row in rows)


def release_held(
    session: Session, ids: Sequence[int], actor: User | str, org_id: int | None = None
) -> list[int]:
    """Held messages back to "received", marked cap_exempt: a person looked at them, so
    routing does not hold them back again for their sender's cap. Each release is in the
    audit log; `org_id` keeps an admin to their own organization's messages."""
    query = select(InboundMessage).where(
        InboundMessage.id.in_(ids), InboundMessage.status == InboundStatus.HELD
    )
    if org_id is not None:
        query = query.where(InboundMessage.organization_id == org_id)
    rows = session.scalars(query).all()
    for row in rows:
        row.status = InboundStatus.RECEIVED
        row.cap_exempt = True
        row.attempts = 0
        row.error = None
        row.outcome = None
        audit.record(
            session,
            org_id=row.organization_id,
            actor=actor,
            action="inbound.released",
            target=f"inbound:{row.id}",
            detail={"sender": row.sender, "subject": row.subject[:200]},
        )
    session.flush()
    return sorted(row.id for row in rows)


def failed_ids(session: Session, org_id: int | None = None) -> tuple[list[int], list[int]]:
    """Every failed inbound and outbound message's id (of one organization, or all)."""
    inbound = select(InboundMessage.id).where(InboundMessage.status == InboundStatus.FAILED)
    outbound = select(OutboundMail.id).where(OutboundMail.status == OutboundStatus.FAILED)
    if org_id is not None:
        inbound = inbound.where(InboundMessage.organization_id == org_id)
        outbound = outbound.where(OutboundMail.organization_id == org_id)
    return list(session.scalars(inbound)), list(session.scalars(outbound))


def queue_jobs(app: Flask, inbound_ids: Sequence[int], outbound_ids: Sequence[int]) -> int:
    """Queue routing and sending for committed rows; how many could not be queued (they are
    picked up by the worker's sweeps of "received" and "queued" rows all the same)."""
    jobs = get_jobs(app)
    missed = 0
    for name, argument, ids in (
        ("route_inbound", "inbound_id", inbound_ids),
        ("send_outbound", "outbound_id", outbound_ids),
    ):
        for ident in ids:
            try:
                jobs.enqueue(name, **{argument: ident})
            except Exception:
                log.exception("Could not queue %s for %s", name, ident)
                missed += 1
    return missed
