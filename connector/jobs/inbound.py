"""Jobs of the mail gateway's inbound side: routing each received message, and queueing again
what a stopped worker left behind.

A message is routed in one transaction (connector.mail.routing): a worker killed mid-job
leaves its row `received` and nothing half-written, and `requeue_stuck` queues it again.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask
from sqlalchemy import select, update

from connector.db import session_scope
from connector.jobs.queue import queue_of
from connector.mail.models import InboundMessage, InboundStatus
from connector.mail.routing import AlreadyRouted, RoutingConfig, Unroutable, route_message
from connector.orm import utcnow
from connector.store import get_store

log = logging.getLogger(__name__)

# A message is tried this many times at most: Huey's first run and its RETRIES (3, in
# connector/jobs/engine.py). Counted on the row, so that runs the worker died in (and runs
# queued again by requeue_stuck) count too: a message that kills the worker is not tried
# for ever.
MAX_ATTEMPTS = 4
# A message still `received` after this long has no job on its way: queue it again.
STUCK_AFTER = dt.timedelta(minutes=2)
# requeue_stuck queues a message again at most this often (its job may be waiting for a
# retry, or the worker may be busy): the queue does not fill with copies of one message.
REQUEUE_EVERY_SECONDS = 300.0


def routing_config(app: Flask) -> RoutingConfig:
    return RoutingConfig(
        secret_key=app.config["SECRET_KEY"],
        sender_cap=int(app.config["MAIL_SENDER_CAP"]),
        sender_window=dt.timedelta(minutes=int(app.config["MAIL_SENDER_WINDOW_MINUTES"])),
        store=get_store(app),
        settings=app.extensions["connector.settings"],
        public_url=app.config["PUBLIC_URL"],
    )


def start_attempt(app: Flask, inbound_id: int) -> int | None:
    """Count this run on the row, committed before the routing starts; the attempt's
    number, or None when the message is routed already (the job was queued twice)."""
    with session_scope(app) as session:
        counted = session.execute(
            update(InboundMessage)
            .where(
                InboundMessage.id == inbound_id,
                InboundMessage.status == InboundStatus.RECEIVED,
            )
            .values(attempts=InboundMessage.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        if counted.rowcount != 1:  # type: ignore[attr-defined]  # a CursorResult
            return None
        attempts = session.scalar(
            select(InboundMessage.attempts).where(InboundMessage.id == inbound_id)
        )
    return int(attempts or 0)


def mark_failed(app: Flask, inbound_id: int, error: str) -> None:
    """The message failed for good: kept, with why, for `connector mail failed|retry`."""
    with session_scope(app) as session:
        session.execute(
            update(InboundMessage)
            .where(
                InboundMessage.id == inbound_id,
                InboundMessage.status == InboundStatus.RECEIVED,
            )
            .values(status=InboundStatus.FAILED, error=error[:2000], processed_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    log.error("Inbound message %s failed for good: %s", inbound_id, error)


def route_inbound(app: Flask, *, inbound_id: int) -> None:
    """Route the received message: append it to its thread or open a record, once."""
    attempt = start_attempt(app, inbound_id)
    if attempt is None:
        return
    if attempt > MAX_ATTEMPTS:
        mark_failed(app, inbound_id, f"gave up after {MAX_ATTEMPTS} attempts that did not finish")
        return
    try:
        with session_scope(app) as session:
            routed = route_message(session, inbound_id, routing_config(app))
    except AlreadyRouted:
        return
    except Unroutable as error:
        mark_failed(app, inbound_id, str(error))
        return
    except Exception as error:
        if attempt >= MAX_ATTEMPTS:
            mark_failed(app, inbound_id, f"{type(error).__name__}: {error}")
            log.exception("Routing inbound message %s failed", inbound_id)
            return
        raise  # Huey tries it again, later
    if routed is None:
        return
    log.info("Inbound message %s: %s %s", inbound_id, routed.outcome, routed.record or "")
    # The acknowledgment's and the relays' rows are committed: if queueing fails, the
    # outbound side's own sweep sends them.
    to_send = [routed.outbound_id] if routed.outbound_id is not None else []
    for outbound_id in [*to_send, *routed.relay_ids]:
        queue_of(app).enqueue("send_outbound", outbound_id=outbound_id)


class _Requeued:
    """When this process last queued each stuck message, and whether it ran before."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started = False
        self.at: dict[int, float] = {}


_requeued = _Requeued()


def requeue_stuck(app: Flask) -> None:
    """Queue again the messages still `received`: all of them the first time a process
    calls it (the worker starting: what a killed worker left behind), then those received
    more than STUCK_AFTER ago, each at most every REQUEUE_EVERY_SECONDS. Reads the
    (status, received_at) index only."""
    with _requeued.lock:
        first, _requeued.started = not _requeued.started, True
    query = select(InboundMessage.id).where(InboundMessage.status == InboundStatus.RECEIVED)
    if not first:
        query = query.where(InboundMessage.received_at < utcnow() - STUCK_AFTER)
    with session_scope(app) as session:
        ids = list(session.scalars(query.order_by(InboundMessage.received_at).limit(10_000)))
    now = time.monotonic()
    jobs = queue_of(app)
    with _requeued.lock:
        # Forget the messages routed since: the memory stays as small as the backlog.
        waiting = set(ids)
        _requeued.at = {i: t for i, t in _requeued.at.items() if i in waiting}
        due = [
            i
            for i in ids
            if first or now - _requeued.at.get(i, -REQUEUE_EVERY_SECONDS) >= REQUEUE_EVERY_SECONDS
        ]
        for inbound_id in due:
            _requeued.at[inbound_id] = now
    for inbound_id in due:
        jobs.enqueue("route_inbound", inbound_id=inbound_id)
    if due:
        log.info("Queued %d received message(s) again", len(due))


JOBS: dict[str, Callable[..., Any]] = {"route_inbound": route_inbound}
# Run by the worker every minute, and once as it starts: each takes the app.
PERIODIC: list[Callable[[Flask], None]] = [requeue_stuck]
