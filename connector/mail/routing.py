"""Routing a received message: what a stored InboundMessage becomes.

The pipeline, one small step each: claim the row -> parse -> find the organization's alias
or reply address it came to -> drop bounces -> drop loops -> find the thread -> append to
it, or (within the alias's rules and the sender cap) create what the alias creates -> maybe
acknowledge. The caller runs it in one transaction and commits once: the records, the
logged email, the row's outcome and its status `done` are written together or not at all,
so a worker killed mid-way leaves the row `received`, to be routed again from the start.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, lazyload

from connector.activities import intake
from connector.activities.email_data import EmailData
from connector.activities.mime import parse_raw_message
from connector.activities.models import Activity
from connector.activities.service import find_logged_email, fingerprint_message_id, log_email
from connector.addresses import domain_of, normalize_email
from connector.errors import NotFound
from connector.mail.acknowledgments import queue_acknowledgment
from connector.mail.aliases import alias_for_address, list_aliases
from connector.mail.bounces import Bounce, read_bounce
from connector.mail.loops import (
    header_text,
    is_auto_reply,
    loop_reason,
    may_answer,
    why_not_answer,
)
from connector.mail.models import (
    Accept,
    Alias,
    Creates,
    InboundMessage,
    InboundStatus,
    Mailbox,
    OutboundMail,
)
from connector.mail.numbers import numbers_in_subject
from connector.mail.relays import queue_relays
from connector.mail.reply_addresses import record_of_reply_address
from connector.orgs.context import Ctx, Settings
from connector.orgs.models import Organization, Role, User
from connector.orm import utcnow
from connector.records import service as records
from connector.records.editing import update_ticket
from connector.records.models import (
    CLOSED_TICKET_STATUSES,
    Contact,
    ContactEmail,
    RecordType,
    Ticket,
    TicketStatus,
)
from connector.records.refs import RecordRef
from connector.store import SharedStore

log = logging.getLogger(__name__)


class Outcome:
    """What routing did with a message (InboundMessage.outcome)."""

    CREATED = "created"
    APPENDED = "appended"
    BOUNCE = "bounce"
    LOOP = "loop"
    REFUSED = "refused"
    HELD = "held"


class AlreadyRouted(Exception):
    """Another job routed the message first: this one's work is rolled back."""


class Unroutable(Exception):
    """The message can never be routed as things stand (trying again will not help)."""


@dataclass(frozen=True)
class RoutingConfig:
    """What routing takes from the app's configuration."""

    secret_key: str
    sender_cap: int
    sender_window: dt.timedelta
    store: SharedStore
    settings: Settings
    # CONNECTOR_PUBLIC_URL: where the unfollow links in relays point.
    public_url: str


@dataclass(frozen=True)
class Routed:
    outcome: str
    record: RecordRef | None = None
    # The acknowledgment to send once the transaction is committed.
    outbound_id: int | None = None
    # The relays to the record's followers, to send once it is committed.
    relay_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Incoming:
    """The message as the steps read it: its headers (for loops and bounces) and EmailData."""

    row: InboundMessage
    headers: Message
    email: EmailData
    sender: str | None
    # MAIL FROM for mail that came by SMTP; None when unknown (fetched by IMAP).
    envelope_from: str | None


@dataclass(frozen=True)
class Target:
    """Where the message was addressed, within the row's organization."""

    org: Organization
    alias: Alias | None
    reply_record: RecordRef | None
    own_addresses: list[str]


# Claim ----------------------------------------------------------------------------------


def claim(session: Session, inbound_id: int) -> InboundMessage | None:
    """The row, locked on PostgreSQL (a second job waits, then sees it routed); None when
    there is no such row or it is routed already (the job was queued twice)."""
    row = session.scalar(
        select(InboundMessage)
        .where(InboundMessage.id == inbound_id)
        # No join in a FOR UPDATE: PostgreSQL refuses to lock the nullable side of one.
        .options(lazyload(InboundMessage.alias))
        .with_for_update()
    )
    if row is None or row.status != InboundStatus.RECEIVED:
        return None
    return row


def finish(session: Session, row: InboundMessage, outcome: str) -> None:
    """Mark the row routed, on the condition that it still is `received`: on SQLite (no row
    locks) a concurrent job that got there first makes this fail, and all is rolled back."""
    status = InboundStatus.HELD if outcome == Outcome.HELD else InboundStatus.DONE
    done = session.execute(
        update(InboundMessage)
        .where(InboundMessage.id == row.id, InboundMessage.status == InboundStatus.RECEIVED)
        .values(status=status, outcome=outcome, processed_at=utcnow(), error=None)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]  # a CursorResult for an UPDATE
        raise AlreadyRouted(f"inbound message {row.id} was routed by another job")


# Parse ------------------------------------------------------------------------------------


def parse(row: InboundMessage) -> Incoming:
    """The raw message read twice: as EmailData for logging, as headers for the checks."""
    email = parse_raw_message(row.raw)
    headers = message_from_bytes(row.raw)
    envelope_from = row.envelope_from if row.source == "smtp" else None
    return Incoming(row, headers, email, email.from_email, envelope_from)


def fill_row(row: InboundMessage, incoming: Incoming, target: Target) -> None:
    email = incoming.email
    row.sender = incoming.sender
    row.subject = email.subject[:998]
    row.message_id = email.message_id[:998] if email.message_id else None
    row.alias_id = target.alias.id if target.alias is not None else None


# Target -----------------------------------------------------------------------------------


def _recipients(session: Session, incoming: Incoming) -> list[str]:
    """The envelope's recipients; for polled mail (no envelope) the mailbox's alias and the
    addresses of the headers that name where the message was delivered."""
    found = list(incoming.row.recipients or [])
    if incoming.row.mailbox_id is not None:
        mailbox = session.get(Mailbox, incoming.row.mailbox_id)
        if mailbox is not None:
            found.append(mailbox.alias.address)
    if not found:
        for name in ("Delivered-To", "X-Original-To", "To", "Cc"):
            for value in incoming.headers.get_all(name) or []:
                found += re.findall(r"[^\s<>,;\"']+@[^\s<>,;\"']+", str(value))
    cleaned = (normalize_email(a) for a in found)
    return list(dict.fromkeys(a for a in cleaned if a is not None))


def find_target(session: Session, incoming: Incoming, secret_key: str) -> Target:
    """The alias (the first one addressed) and the reply address among the recipients."""
    org = session.get(Organization, incoming.row.organization_id)
    if org is None:
        raise Unroutable(f"organization {incoming.row.organization_id} is gone")
    alias: Alias | None = None
    reply_record: RecordRef | None = None
    for address in _recipients(session, incoming):
        if alias is None:
            candidate = alias_for_address(session, address)
            if candidate is not None and candidate.organization_id == org.id:
                alias = candidate
        if reply_record is None and org.mail_domain and domain_of(address) == org.mail_domain:
            reply_record = record_of_reply_address(secret_key, org.id, address)
    own = [a.address for a in list_aliases(session, org)]
    return Target(org, alias, reply_record, own)


# Bounces and loops --------------------------------------------------------------------------


# A bounce is believed only about an address we sent to lately: anyone can send a
# "failure notice" naming any address, and a contact marked bouncing is one the team stops
# writing to.
BOUNCE_LOOKBACK = dt.timedelta(days=30)
BOUNCE_LOOKBACK_ROWS = 5000


def addresses_we_sent_to(session: Session, org_id: int, candidates: set[str]) -> set[str]:
    """Those of `candidates` that mail of ours went to within BOUNCE_LOOKBACK."""
    recent = session.scalars(
        select(OutboundMail.to_addresses)
        .where(
            OutboundMail.organization_id == org_id,
            OutboundMail.created_at >= utcnow() - BOUNCE_LOOKBACK,
        )
        .order_by(OutboundMail.id.desc())
        .limit(BOUNCE_LOOKBACK_ROWS)
    )
    sent = {address.lower() for addresses in recent for address in addresses}
    return candidates & sent


def mark_bounced(session: Session, org_id: int, bounce: Bounce) -> list[str]:
    """Mark each failed address that is one of the organization's contacts' and that mail of
    ours went to as bouncing; the addresses marked."""
    failed = addresses_we_sent_to(session, org_id, {a.lower() for a in bounce.failed})
    if not failed:
        return []
    emails = session.scalars(
        select(ContactEmail).where(
            ContactEmail.organization_id == org_id, ContactEmail.email.in_(failed)
        )
    )
    marked = []
    now = utcnow()
    for contact_email in emails:
        contact_email.bounced_at = now
        contact_email.bounce_reason = bounce.reason
        marked.append(contact_email.email)
    return marked


def drop_bounce(session: Session, incoming: Incoming, target: Target) -> bool:
    """A bounce opens nothing; it marks the addresses it names as bouncing."""
    bounce = read_bounce(incoming.headers, incoming.envelope_from)
    if bounce is None:
        return False
    mark_bounced(session, target.org.id, bounce)
    return True


def drop_loop(incoming: Incoming, target: Target) -> bool:
    """Our own mail come back round opens nothing."""
    reason = loop_reason(
        incoming.headers, own_domain=target.org.mail_domain, own_addresses=target.own_addresses
    )
    return reason is not None


# Who does the work ----------------------------------------------------------------------------


def _active_users(session: Session, org_id: int, role: Role | None = None) -> list[User]:
    query = select(User).where(User.organization_id == org_id, User.deactivated_at.is_(None))
    if role is not None:
        query = query.where(User.role == role)
    return list(session.scalars(query.order_by(User.created_at, User.id).limit(1)))


def working_user(session: Session, target: Target) -> User:
    """Whom the records, the history and the logged email name as their author: the alias's
    owner while active; else the organization's oldest active admin (who set the alias up or
    took over from its owner); else its oldest active user. A mail gateway acts for the
    team, and every change in the records is some user's."""
    alias = target.alias
    if alias is not None and alias.owner is not None and alias.owner.active:
        return alias.owner
    for users in (
        _active_users(session, target.org.id, Role.ADMIN),
        _active_users(session, target.org.id),
    ):
        if users:
            return users[0]
    raise Unroutable(f"{target.org.name} has no active user to route its mail as")


def is_org_user(ctx: Ctx, address: str | None) -> bool:
    if not address:
        return False
    user = ctx.session.scalar(
        select(User).where(User.organization_id == ctx.org_id, User.email == address.lower())
    )
    return user is not None and user.active


def known_contact(ctx: Ctx, address: str | None) -> RecordRef | None:
    if not address:
        return None
    contact = records.contact_for_email(ctx.session, ctx.org_id, address)
    return RecordRef(RecordType.CONTACT, contact.id) if contact is not None else None


def clear_bounce_mark(ctx: Ctx, address: str | None) -> None:
    """Mail from an address shows it works again."""
    if not address:
        return
    ctx.session.execute(
        update(ContactEmail)
        .where(
            ContactEmail.organization_id == ctx.org_id,
            ContactEmail.email == address.lower(),
            ContactEmail.bounced_at.is_not(None),
        )
        .values(bounced_at=None, bounce_reason=None)
        .execution_options(synchronize_session=False)
    )


# The thread -------------------------------------------------------------------------------------


def referenced_ids(headers: Message) -> list[str]:
    """In-Reply-To first, then References from the newest back: the closest first."""
    in_reply_to = re.findall(r"<[^<>\s]+>", header_text(headers, "In-Reply-To"))
    references = re.findall(r"<[^<>\s]+>", header_text(headers, "References"))
    return list(dict.fromkeys([*in_reply_to, *reversed(references)]))


def live_record(ctx: Ctx, ref: RecordRef) -> bool:
    try:
        records.get_record(ctx.session, ctx.org_id, ref)
    except NotFound:
        return False
    return True


def _best(ctx: Ctx, refs: list[RecordRef]) -> RecordRef | None:
    """A lead or ticket before a contact or company, each only while it is not archived."""
    ordered = sorted(refs, key=lambda r: r.type not in (RecordType.LEAD, RecordType.TICKET))
    return next((r for r in ordered if live_record(ctx, r)), None)


def _logged_on(ctx: Ctx, message_id: str) -> list[RecordRef]:
    activity = ctx.session.scalar(
        select(Activity).where(
            Activity.organization_id == ctx.org_id, Activity.message_id == message_id
        )
    )
    links = activity.links if activity is not None else []
    return [RecordRef(RecordType(link.record_type), link.record_id) for link in links]


def thread_by_own_id(ctx: Ctx, incoming: Incoming) -> RecordRef | None:
    """The same message delivered again (to two aliases in two transactions, by SMTP and
    by a polled mailbox, or sent again by a server that missed our 250): the lead or
    ticket it opened already, so that it opens no second one."""
    message_id = incoming.email.message_id
    if message_id is None:
        return None
    refs = [
        r for r in _logged_on(ctx, message_id) if r.type in (RecordType.LEAD, RecordType.TICKET)
    ]
    return _best(ctx, refs)


def thread_by_references(ctx: Ctx, incoming: Incoming) -> RecordRef | None:
    """The record of a message this one answers: logged on a record (ours or the
    customer's), or an acknowledgment we sent about one."""
    own_id = incoming.email.message_id
    for message_id in referenced_ids(incoming.headers):
        if message_id == own_id:
            continue
        refs = _logged_on(ctx, message_id)
        sent = ctx.session.scalar(
            select(OutboundMail).where(
                OutboundMail.organization_id == ctx.org_id, OutboundMail.message_id == message_id
            )
        )
        if sent is not None and sent.record_type is not None and sent.record_id is not None:
            refs.append(RecordRef(sent.record_type, sent.record_id))
        best = _best(ctx, refs)
        if best is not None:
            return best
    return None


def thread_by_reply_address(ctx: Ctx, target: Target) -> RecordRef | None:
    ref = target.reply_record
    return ref if ref is not None and live_record(ctx, ref) else None


def is_participant(ctx: Ctx, ref: RecordRef, sender: str | None) -> bool:
    """The sender is the record's contact, a contact of its company, or one of the team."""
    if not sender:
        return False
    if is_org_user(ctx, sender):
        return True
    record = records.get_record(ctx.session, ctx.org_id, ref)
    contact = records.contact_for_email(ctx.session, ctx.org_id, sender)
    if contact is None:
        return False
    if ref.type == RecordType.CONTACT:
        return bool(contact.id == ref.id)
    if ref.type == RecordType.COMPANY:
        return bool(contact.company_id == ref.id)
    return bool(
        contact.id == record.contact_id
        or (record.company_id is not None and contact.company_id == record.company_id)
    )


def thread_by_number(ctx: Ctx, incoming: Incoming) -> RecordRef | None:
    """A "[#T-1234]" in the subject, when the sender takes part in that record: a stranger
    quoting a number must not write on someone else's ticket."""
    for ref in numbers_in_subject(incoming.email.subject):
        if live_record(ctx, ref) and is_participant(ctx, ref, incoming.sender):
            return ref
    return None


def find_thread(ctx: Ctx, incoming: Incoming, target: Target) -> RecordRef | None:
    return (
        thread_by_own_id(ctx, incoming)
        or thread_by_references(ctx, incoming)
        or thread_by_reply_address(ctx, target)
        or thread_by_number(ctx, incoming)
    )


# Append ------------------------------------------------------------------------------------------


def reopen_if_closed(ctx: Ctx, ref: RecordRef, incoming: Incoming) -> None:
    """A customer's mail to a resolved or closed ticket opens it again, in its history. The
    team's own mail and robots' answers (an out-of-office) leave it as it is."""
    if ref.type != RecordType.TICKET or is_org_user(ctx, incoming.sender):
        return
    if is_auto_reply(incoming.headers):
        return
    ticket: Ticket = records.get_record(ctx.session, ctx.org_id, ref)
    if ticket.status in CLOSED_TICKET_STATUSES:
        update_ticket(ctx, ticket.id, {"status": TicketStatus.OPEN})


def append(ctx: Ctx, incoming: Incoming, ref: RecordRef) -> tuple[Activity, bool]:
    """Log the email on the record and on the sender's contact; the activity, and whether
    the email is new on the record (not the same message delivered again)."""
    refs = [ref]
    contact = known_contact(ctx, incoming.sender)
    if contact is not None and contact != ref:
        refs.append(contact)
    logged = log_email(ctx, incoming.email, refs)
    reopen_if_closed(ctx, ref, incoming)
    return logged.activity, ref in logged.newly_linked


# Create ------------------------------------------------------------------------------------


def accepts(ctx: Ctx, alias: Alias, sender: str | None) -> bool:
    """Whether the alias takes a new message from this sender (Alias.accept)."""
    if alias.accept == Accept.CONTACTS:
        return known_contact(ctx, sender) is not None
    if alias.accept == Accept.USERS:
        return is_org_user(ctx, sender)
    return True


def over_sender_cap(session: Session, row: InboundMessage, config: RoutingConfig) -> bool:
    """The sender opened MAIL_SENDER_CAP records or more within the window (as Odoo's
    gateway caps a sender): a runaway script or a loop we did not recognise."""
    since = utcnow() - config.sender_window
    opened = session.scalar(
        select(func.count())
        .select_from(InboundMessage)
        .where(
            InboundMessage.organization_id == row.organization_id,
            InboundMessage.sender == row.sender,
            InboundMessage.received_at >= since,
            InboundMessage.outcome == Outcome.CREATED,
        )
    )
    return int(opened or 0) >= config.sender_cap


def _logged(ctx: Ctx, email: EmailData) -> Activity | None:
    return find_logged_email(ctx, email.message_id or fingerprint_message_id(email))


def sender_contact(ctx: Ctx, sender: str, display_name: str) -> Contact | None:
    """The sender's contact; a stranger becomes one, with a new company made from their
    domain when no company has it and it is not free-mail (mail to sales@ from
    ana@globex.example brings Globex in, as Odoo's gateway does). None for an archived
    contact's address: the record is then for no contact, and the archived one can still be
    restored. (The sidebar's "create lead from this email" only proposes the company.)"""
    existing = records.contact_for_email(ctx.session, ctx.org_id, sender, include_archived=True)
    if existing is not None:
        return existing if existing.archived_at is None else None
    proposal = records.propose_contact(ctx, sender, display_name)
    company = proposal["new_company"]
    return records.create_contact(
        ctx,
        name=proposal["name"],
        emails=[sender],
        new_company={"name": company["name"], "domains": [company["domain"]]} if company else None,
    )


def create(ctx: Ctx, incoming: Incoming, alias: Alias) -> tuple[RecordRef, Activity | None]:
    """What the alias creates, for the sender's contact (found or created, with the
    company of its domain unless free-mail), owned by the alias's owner (else the user
    routing it), the email logged on it."""
    owner_id = alias.owner_id if alias.owner is not None and alias.owner.active else ctx.user.id
    email = incoming.email
    sender = incoming.sender or ""
    contact = sender_contact(ctx, sender, email.from_name)
    fields = {"email_data": email, "owner_id": owner_id, "contact_id": contact and contact.id}
    if alias.creates == Creates.LEAD:
        lead = intake.create_lead(ctx, fields)
        return RecordRef(RecordType.LEAD, lead.id), _logged(ctx, email)
    if alias.creates == Creates.TICKET:
        ticket = intake.create_ticket(ctx, fields)
        return RecordRef(RecordType.TICKET, ticket.id), _logged(ctx, email)
    # A task is about the sender's contact: that contact is the record the email goes on.
    if contact is None:
        raise Unroutable(f"{sender} is the address of an archived contact")
    ref = RecordRef(RecordType.CONTACT, contact.id)
    records.create_task(
        ctx,
        title=(email.subject.strip() or "(no subject)")[:300],
        record=ref,
        assignee_id=owner_id,
    )
    return ref, log_email(ctx, email, [ref]).activity


def acknowledge(
    ctx: Ctx, incoming: Incoming, target: Target, record: RecordRef, config: RoutingConfig
) -> OutboundMail | None:
    """The alias's acknowledgment, when it gives one and the message may be answered."""
    alias = target.alias
    if alias is None or not alias.auto_reply:
        return None
    if not may_answer(
        incoming.headers,
        envelope_from=incoming.envelope_from,
        own_domain=target.org.mail_domain,
        bounce=False,
    ):
        return None
    try:
        # A savepoint: an acknowledgment that cannot be made (an address our mail cannot
        # carry, a template that fails) costs the acknowledgment, never the record.
        with ctx.session.begin_nested():
            return queue_acknowledgment(
                ctx,
                alias=alias,
                inbound=incoming.row,
                email=incoming.email,
                record=record,
                secret_key=config.secret_key,
            )
    except (ValueError, LookupError) as error:  # UnicodeError is a ValueError
        log.warning("No acknowledgment for inbound message %s: %s", incoming.row.id, error)
        return None


def relay(
    ctx: Ctx, incoming: Incoming, record: RecordRef, config: RoutingConfig
) -> tuple[int, ...]:
    """The message relayed to the record's followers who are users: unless it is a robot's
    (an out-of-office, a list's, an automatic notice), which would answer the relays in
    turn and go round for ever. A person's own domain is no reason (unlike acknowledging):
    the team writes from it."""
    if (
        why_not_answer(
            incoming.headers, envelope_from=incoming.envelope_from, own_domain=None, bounce=False
        )
        is not None
    ):
        return ()
    rows = queue_relays(
        ctx,
        record=record,
        incoming_email=incoming.email,
        inbound_row=incoming.row,
        secret_key=config.secret_key,
        public_url=config.public_url,
    )
    return tuple(row.id for row in rows)


# The pipeline -----------------------------------------------------------------------------------


def _done(session: Session, row: InboundMessage, routed: Routed) -> Routed:
    if routed.record is not None:
        row.record_type = routed.record.type
        row.record_id = routed.record.id
    session.flush()
    finish(session, row, routed.outcome)
    return routed


def route_message(session: Session, inbound_id: int, config: RoutingConfig) -> Routed | None:
    """Route the message in the caller's transaction (it commits, or rolls back on error);
    None when it was routed already. AlreadyRouted when a concurrent job won the race."""
    row = claim(session, inbound_id)
    if row is None:
        return None
    incoming = parse(row)
    target = find_target(session, incoming, config.secret_key)
    fill_row(row, incoming, target)
    if drop_bounce(session, incoming, target):
        return _done(session, row, Routed(Outcome.BOUNCE))
    if drop_loop(incoming, target):
        return _done(session, row, Routed(Outcome.LOOP))
    if not incoming.sender:
        # No From address: no one to find a thread for, make a contact of or answer.
        return _done(session, row, Routed(Outcome.REFUSED))
    ctx = Ctx(session, working_user(session, target), config.store, config.settings)
    clear_bounce_mark(ctx, incoming.sender)
    thread = find_thread(ctx, incoming, target)
    if thread is not None:
        activity, new_on_record = append(ctx, incoming, thread)
        row.activity_id = activity.id
        # The same message delivered again (a server that missed our 250, or by SMTP and a
        # polled mailbox both) was relayed the first time.
        relays = relay(ctx, incoming, thread, config) if new_on_record else ()
        return _done(session, row, Routed(Outcome.APPENDED, thread, relay_ids=relays))
    if target.alias is None or not accepts(ctx, target.alias, incoming.sender):
        # Mail to a reply address whose record is gone, or from someone the alias does not
        # take mail from: logged nowhere, nothing opened.
        return _done(session, row, Routed(Outcome.REFUSED))
    if is_auto_reply(incoming.headers):
        # An out-of-office answer that belongs to no thread would open a record about nothing.
        return _done(session, row, Routed(Outcome.LOOP))
    # A message an admin released from the held ones is routed without the cap.
    if not row.cap_exempt and over_sender_cap(session, row, config):
        return _done(session, row, Routed(Outcome.HELD))
    record, logged = create(ctx, incoming, target.alias)
    row.activity_id = logged.id if logged is not None else None
    outbound = acknowledge(ctx, incoming, target, record, config)
    relays = relay(ctx, incoming, record, config)
    routed = Routed(Outcome.CREATED, record, outbound.id if outbound is not None else None, relays)
    return _done(session, row, routed)
