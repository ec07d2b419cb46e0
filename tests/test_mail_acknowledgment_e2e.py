"""The issue's acknowledgment, end to end as an admin sets it up and a customer meets it: the
commands make the organization's mail domain and a support@ alias with --auto-reply; mail goes
through a real `connector mail-gateway` and a real `connector worker`, which opens the ticket
and sends the acknowledgment through CONNECTOR_SMTP_URL (an aiosmtpd server), DKIM-signed
with the configured key; robots (auto-submitted, bulk) get no answer."""

from __future__ import annotations

import time
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import dkim
import sqlalchemy as sa

from connector.db import session_scope
from connector.mail.models import InboundMessage, InboundStatus, OutboundMail
from connector.records.models import Ticket
from tests import gateway_fixtures
from tests.gateway_fixtures import message, smtp, wait_for
from tests.smtp_fixtures import rsa_key_pem, smtp_server

gateway = gateway_fixtures.gateway

DOMAIN = "initrode.test"
SUPPORT = f"support@{DOMAIN}"
# A bound, not a measure: the worker polls SQLite every 2 s at most.
WITHIN = 60


def set_up_support(runner) -> None:
    """As an admin would, with the commands the README shows."""
    for args in (
        [
            "users",
            "create",
            "--org",
            "Initrode",
            "--email",
            "ann@initrode.test",
            "--name",
            "Ann",
            "--admin",
        ],
        ["orgs", "mail-domain", "--org", "Initrode", "--domain", DOMAIN],
        [
            "aliases",
            "create",
            "--org",
            "Initrode",
            "--address",
            SUPPORT,
            "--creates",
            "ticket",
            "--owner",
            "ann@initrode.test",
            "--auto-reply",
        ],
    ):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, result.output


def send(port: int, mail: Any, envelope_from: str) -> int:
    with smtp(port) as client:
        client.mail(envelope_from)
        assert client.rcpt(SUPPORT)[0] == 250
        code, reply = client.data(mail.as_bytes())
    assert code == 250, reply
    return int(reply.decode().rpartition(" ")[2])


def routed(app, inbound_id: int) -> bool:
    with session_scope(app) as session:
        row = session.get(InboundMessage, inbound_id)
        return row is not None and row.status == InboundStatus.DONE


def test_support_acknowledges_a_person_signed_and_never_a_robot(
    queue_app, runner, gateway, worker, tmp_path: Path
) -> None:
    set_up_support(runner)
    public_key = rsa_key_pem(tmp_path / "dkim.pem")
    with smtp_server(tmp_path) as server:
        queue_app.config.update(
            SMTP_URL=server.url(), DKIM_SELECTOR="s2026", DKIM_KEY_FILE=str(tmp_path / "dkim.pem")
        )
        running = gateway(queue_app)
        worker()

        person = message(
            subject="Printer on fire", sender="Hank Hill <hank@customer.test>", to=SUPPORT
        )
        person_id = send(running.port, person, "hank@customer.test")
        wait_for(lambda: server.handler.messages, "the acknowledgment to be sent", WITHIN)

        robots = [
            message(
                subject="Your order shipped",
                sender="shop@robots.test",
                to=SUPPORT,
                Auto_Submitted="auto-generated",
            ),
            message(subject="Newsletter", sender="news@robots.test", to=SUPPORT, Precedence="bulk"),
        ]
        robot_ids = [send(running.port, mail, "bounces@robots.test") for mail in robots]
        for robot_id in robot_ids:
            wait_for(lambda robot_id=robot_id: routed(queue_app, robot_id), "routing", WITHIN)
        # Anything an answer to a robot would have queued would be sent within this time.
        time.sleep(3)

    # The ticket's owner follows it and gets the person's mail relayed (issue 18): the
    # answer is what went to anyone else.
    [ack] = [m for m in server.handler.messages if m.rcpt_tos != ["ann@initrode.test"]]
    assert ack.rcpt_tos == ["hank@customer.test"]
    headers = message_from_bytes(ack.content, policy=policy.default)
    with session_scope(queue_app) as session:
        person_row = session.get(InboundMessage, person_id)
        ticket = session.get(Ticket, person_row.record_id)
        assert ticket.subject == "Printer on fire"
        # One answer, to the person; the robots' mail was routed (a shop's order mail is
        # still the customer's business) but answered by no one, nor relayed to the owner.
        outbound = session.scalars(sa.select(OutboundMail).order_by(OutboundMail.id)).all()
        assert [(o.kind, o.inbound_id) for o in outbound] == [
            ("acknowledgment", person_id),
            ("relay", person_id),
        ]
    assert headers["Auto-Submitted"] == "auto-replied"
    assert headers["From"].addresses[0].addr_spec == SUPPORT
    assert f"[#T-{ticket.id}]" in headers["Subject"]
    assert headers["In-Reply-To"] == person["Message-ID"]
    assert headers["Reply-To"].addresses[0].domain == DOMAIN
    assert headers["Message-ID"].endswith(f"@{DOMAIN}>")

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        if name == f"s2026._domainkey.{DOMAIN}.".encode():
            return b"v=DKIM1; k=rsa; p=" + public_key
        return None

    assert dkim.verify(ack.content, dnsfunc=dns)
    # Changed in transit, the signature no longer holds.
    assert not dkim.verify(ack.content.replace(b"Printer on fire", b"Printer on ice"), dnsfunc=dns)
