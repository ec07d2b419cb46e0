"""`connector mail-gateway`: an SMTP server (aiosmtpd) that a mail server forwards to, or
that the MX points at.

The promise to the sending server: a 250 after DATA means the message is committed to the
database (an InboundMessage row per organization, status "received"). Everything that can
fail later (parsing, routing, acknowledging) happens in the worker, from that row. So:
- a recipient that is neither an alias nor a valid reply address is refused at RCPT (550),
  before any data is taken: nothing is accepted that nobody would read;
- when the row cannot be stored, DATA answers 451: the sender keeps the message and tries
  again later;
- when the job cannot be queued after the commit, the answer is still 250: the row is
  durable, and the worker's sweep queues every row still "received".

The database calls are short and blocking: they run in the event loop's default executor,
so one slow commit does not stall the other connections.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import TypeVar

from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SMTPSession
from flask import Flask
from sqlalchemy.orm import Session

from connector.addresses import domain_of, normalize_email
from connector.db import session_scope
from connector.jobs import get_jobs
from connector.jobs.tasks import record_heartbeat
from connector.mail.aliases import alias_for_address, org_for_mail_domain
from connector.mail.models import InboundMessage, InboundStatus
from connector.mail.reply_addresses import record_of_reply_address

log = logging.getLogger(__name__)

HEARTBEAT_NAME = "mail-gateway"
HEARTBEAT_SECONDS = 30.0
# More recipients than this in one transaction is not forwarding but a mass mailing.
MAX_RECIPIENTS = 100
# How long a stop waits for messages being stored to be committed and answered.
STOP_GRACE_SECONDS = 30.0
IDENT = "connector mail-gateway"

# The replies, with RFC 3463 enhanced status codes: mail servers log and bounce with them.
ACCEPTED = "250 2.1.5 OK"
UNKNOWN_USER = "550 5.1.1 <{address}>: no such user here"
RELAY_DENIED = "550 5.7.1 <{address}>: relaying denied, {domain} is not a domain of this gateway"
BAD_ADDRESS = "553 5.1.3 <{address}>: not a valid address"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
TRY_LATER_RCPT = "451 4.3.0 Cannot check the recipient now, try again later"
TRY_LATER_DATA = "451 4.3.0 Cannot store the message now, try again later"

T = TypeVar("T")


@dataclass(frozen=True)
class Verdict:
    """What RCPT answers for an address: accepted for an organization, or refused."""

    reply: str
    org_id: int | None = None
    address: str = ""


def judge_recipient(session: Session, secret_key: str, address: str) -> Verdict:
    """Accept an alias, or a reply address whose signature is right for the organization
    whose mail domain it is at; refuse anything else."""
    clean = normalize_email(address)
    if clean is None:
        return Verdict(BAD_ADDRESS.format(address=address))
    alias = alias_for_address(session, clean)
    if alias is not None:
        return Verdict(ACCEPTED, alias.organization_id, clean)
    domain = domain_of(clean)
    org = org_for_mail_domain(session, domain)
    if org is None:
        return Verdict(RELAY_DENIED.format(address=clean, domain=domain))
    if record_of_reply_address(secret_key, org.id, clean) is not None:
        return Verdict(ACCEPTED, org.id, clean)
    return Verdict(UNKNOWN_USER.format(address=clean))


def store_message(
    app: Flask, *, envelope_from: str, recipients: dict[int, list[str]], raw: bytes
) -> list[int]:
    """One InboundMessage per organization, all committed together; their ids."""
    with session_scope(app) as session:
        rows = [
            InboundMessage(
                organization_id=org_id,
                source="smtp",
                envelope_from=envelope_from,
                recipients=addresses,
                raw=raw,
                size=len(raw),
                status=InboundStatus.RECEIVED,
            )
            for org_id, addresses in sorted(recipients.items())
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def _printable(text: str) -> str:
    """ASCII without controls, for a header: the HELO name is whatever the client said."""
    return "".join(c if 32 < ord(c) < 127 else "?" for c in text)[:200] or "unknown"


def trace_header(session: SMTPSession, hostname: str) -> bytes:
    """The Received: line a server adds to what it accepts (RFC 5321, 4.4): where the
    message came from, for whoever reads the logged email's headers later."""
    peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer or "")
    helo = _printable(session.host_name or "")
    protocol = "ESMTP" if session.extended_smtp else "SMTP"
    return (
        f"Received: from {helo} ([{_printable(peer)}])\r\n"
        f"\tby {hostname} ({IDENT}) with {protocol};\r\n"
        f"\t{formatdate(usegmt=True)}\r\n"
    ).encode("ascii")


class GatewayHandler:
    """aiosmtpd's handler: the RCPT and DATA hooks."""

    def __init__(self, app: Flask, hostname: str) -> None:
        self.app = app
        self.hostname = hostname
        self.secret_key: str = app.config["SECRET_KEY"]
        self.enqueue_seconds: float = app.config["MAIL_TIMEOUT_SECONDS"]
        # The organization of each address accepted in a transaction, by its envelope
        # (aiosmtpd makes a new one for each transaction; the entry goes with it).
        self._accepted: weakref.WeakKeyDictionary[Envelope, dict[str, int]] = (
            weakref.WeakKeyDictionary()
        )
        # Messages between the end of DATA and the answer: a stop waits for them.
        self.storing = 0
        self.idle = asyncio.Event()
        self.idle.set()

    async def _blocking(self, function: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(None, function)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: SMTPSession,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        accepted = self._accepted.setdefault(envelope, {})
        if len(accepted) >= MAX_RECIPIENTS:
            return TOO_MANY_RECIPIENTS

        def judge() -> Verdict:
            with session_scope(self.app) as db:
                return judge_recipient(db, self.secret_key, address)

        try:
            verdict = await self._blocking(judge)
        except Exception:
            log.exception("Could not check the recipient %s", address)
            return TRY_LATER_RCPT
        if verdict.org_id is None:
            log.info("Refused %s from %s: %s", address, envelope.mail_from, verdict.reply)
            return verdict.reply
        if verdict.address not in accepted:
            accepted[verdict.address] = verdict.org_id
            envelope.rcpt_tos.append(verdict.address)
            envelope.rcpt_options.extend(rcpt_options)
        return ACCEPTED

    async def handle_DATA(self, server: SMTP, session: SMTPSession, envelope: Envelope) -> str:
        accepted = self._accepted.get(envelope, {})
        by_org: dict[int, list[str]] = {}
        for address, org_id in accepted.items():
            by_org.setdefault(org_id, []).append(address)
        raw = trace_header(session, self.hostname) + (envelope.original_content or b"")
        # aiosmtpd gives the null reverse-path (bounces, auto-replies) as "<>".
        mail_from = envelope.mail_from or ""
        envelope_from = "" if mail_from == "<>" else mail_from
        self.storing += 1
        self.idle.clear()
        try:
            return await self._store_and_queue(envelope_from, by_org, raw)
        finally:
            self.storing -= 1
            if not self.storing:
                self.idle.set()

    async def _store_and_queue(
        self, envelope_from: str, by_org: dict[int, list[str]], raw: bytes
    ) -> str:
        try:
            ids = await self._blocking(
                lambda: store_message(
                    self.app, envelope_from=envelope_from, recipients=by_org, raw=raw
                )
            )
        except Exception:
            log.exception("Could not store a message from %r: answered 451", envelope_from)
            return TRY_LATER_DATA
        log.info(
            "Stored message(s) %s from %r for %s (%d bytes)",
            ids,
            envelope_from,
            [a for addresses in by_org.values() for a in addresses],
            len(raw),
        )
        jobs = get_jobs(self.app)
        for inbound_id in ids:

            def enqueue(inbound_id: int = inbound_id) -> str:
                return jobs.enqueue("route_inbound", inbound_id=inbound_id)

            try:
                # Bounded: a queue that hangs must not keep the sender waiting for its 250.
                await asyncio.wait_for(self._blocking(enqueue), self.enqueue_seconds)
            except Exception:
                # Committed already: the worker's sweep queues rows still "received".
                log.exception("Stored message %s, but could not queue its routing", inbound_id)
        return f"250 2.0.0 Queued as {', '.join(str(i) for i in ids)}"


async def _heartbeat(app: Flask, detail: dict[str, object]) -> None:
    """Tell /readyz we are alive, every HEARTBEAT_SECONDS, for as long as we serve."""
    loop = asyncio.get_running_loop()

    def beat() -> None:
        with session_scope(app) as session:
            record_heartbeat(session, HEARTBEAT_NAME, dict(detail))

    while True:
        try:
            await loop.run_in_executor(None, beat)
        except Exception as exc:
            log.warning("Could not record the gateway's heartbeat: %s", exc)
        await asyncio.sleep(HEARTBEAT_SECONDS)


async def serve(
    app: Flask, host: str, port: int, *, started: Callable[[int], None] | None = None
) -> None:
    """Serve SMTP on host:port until SIGINT or SIGTERM; then stop taking connections and
    let the messages being stored get their answer. `started` is called with the port
    listened on (the one the system chose when `port` is 0)."""
    loop = asyncio.get_running_loop()
    hostname = socket.gethostname()
    handler = GatewayHandler(app, hostname)
    limit: int = app.config["MAIL_MAX_MESSAGE_BYTES"]

    def protocol() -> SMTP:
        return SMTP(
            handler,
            data_size_limit=limit,
            enable_SMTPUTF8=True,
            hostname=hostname,
            ident=IDENT,
            loop=loop,
        )

    server = await loop.create_server(protocol, host=host, port=port)
    bound = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    beating = asyncio.create_task(_heartbeat(app, {"host": hostname, "port": bound}))
    log.info("Mail gateway listening on %s:%s (messages up to %d bytes)", host, bound, limit)
    if started is not None:
        started(bound)
    try:
        await stop.wait()
    finally:
        log.info("Mail gateway stopping")
        server.close()
        beating.cancel()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        try:
            await asyncio.wait_for(handler.idle.wait(), STOP_GRACE_SECONDS)
        except TimeoutError:
            log.warning("Stopped with %d message(s) unanswered", handler.storing)
