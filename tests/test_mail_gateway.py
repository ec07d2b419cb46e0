"""`connector mail-gateway`, a real process spoken to over SMTP with smtplib: recipients
refused at RCPT unless they are an alias or a valid reply address, a 250 only once the
message is committed, 4xx when it cannot be, the size limit, its heartbeat in /readyz; and
`connector mail queue|failed|retry|held`."""

from __future__ import annotations

import signal
import smtplib
import socket
import subprocess

import pytest
import sqlalchemy as sa
from flask import Flask

from connector.app import create_app
from connector.audit.models import AuditEvent
from connector.db import session_scope, upgrade_schema
from connector.demo.data import MAIL_DOMAIN, load_demo
from connector.jobs import get_jobs
from connector.mail.aliases import list_aliases
from connector.mail.models import (
    InboundMessage,
    InboundStatus,
    OutboundMail,
    OutboundStatus,
)
from connector.mail.reply_addresses import reply_address
from connector.orgs.models import Organization
from connector.records.models import RecordType
from connector.records.refs import RecordRef
from tests import gateway_fixtures
from tests.conftest import base_config
from tests.gateway_fixtures import (
    BIN,
    DOMAIN,
    OTHER_DOMAIN,
    app_env,
    inbound_rows,
    make_mail_orgs,
    message,
    smtp,
    wait_for,
)

# The fixtures of tests/gateway_fixtures.py, for this module's tests.
gateway = gateway_fixtures.gateway
mail_org = gateway_fixtures.mail_org

SENDER = "hank@customer.test"


def rcpt(client: smtplib.SMTP, address: str) -> tuple[int, bytes]:
    return client.rcpt(address)


def test_an_alias_is_accepted_and_the_message_stored_before_the_250(
    queue_app, gateway, mail_org
) -> None:
    running = gateway(queue_app)
    mail = message()
    raw = mail.as_bytes().replace(b"\n", b"\r\n")
    client = smtp(running.port)
    try:
        assert "size" in client.esmtp_features
        assert client.mail(SENDER)[0] == 250
        assert rcpt(client, f"Sales@{DOMAIN.upper()}")[0] == 250
        code, reply = client.data(raw)
    finally:
        client.quit()
    assert code == 250, reply
    (row,) = inbound_rows(queue_app)
    assert reply.decode() == f"2.0.0 Queued as {row.id}"
    assert row.organization_id == mail_org.org_id
    assert (row.status, row.source, row.attempts) == (InboundStatus.RECEIVED, "smtp", 0)
    assert row.envelope_from == SENDER
    assert row.recipients == [f"sales@{DOMAIN}"]
    # The message whole, after the trace line the gateway adds.
    assert row.raw.startswith(b"Received: from client.test ([127.0.0.1])\r\n")
    assert row.raw.endswith(raw) and row.size == len(row.raw)
    # Its routing is queued, on the queue the worker reads.
    assert get_jobs(queue_app).pending() == 1


def test_unknown_recipients_are_refused_at_rcpt(queue_app, gateway, mail_org) -> None:
    running = gateway(queue_app)
    client = smtp(running.port)
    try:
        client.mail(SENDER)
        code, reply = rcpt(client, f"nobody@{DOMAIN}")
        assert (code, reply[:5]) == (550, b"5.1.1"), reply
        code, reply = rcpt(client, "someone@elsewhere.test")
        assert (code, reply[:5]) == (550, b"5.7.1"), reply
        assert b"relaying denied" in reply
        # A '+' address that is no valid reply address is nobody either.
        assert rcpt(client, f"sales+x@{DOMAIN}")[0] == 550
        # With no recipient accepted there is nothing to send data for.
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.data(b"Subject: x\r\n\r\nx\r\n")
        assert refused.value.smtp_code == 503
    finally:
        client.quit()
    # smtplib's sendmail, as any client: every recipient refused is an error.
    with pytest.raises(smtplib.SMTPRecipientsRefused), smtp(running.port) as client:
        client.sendmail(SENDER, [f"nobody@{DOMAIN}"], message().as_bytes())
    assert inbound_rows(queue_app) == []


def test_a_valid_reply_address_is_accepted_and_a_forged_one_refused(
    queue_app, gateway, mail_org
) -> None:
    running = gateway(queue_app)
    secret = queue_app.config["SECRET_KEY"]
    ticket = RecordRef(RecordType.TICKET, 34)
    valid = reply_address(secret, mail_org.org_id, DOMAIN, ticket)
    # Signed for another record, for another organization, with another key.
    other_record = reply_address(secret, mail_org.org_id, DOMAIN, RecordRef(RecordType.TICKET, 35))
    forged = valid.replace("t34-", "t35-")
    other_org = reply_address(secret, mail_org.other_org_id, DOMAIN, ticket)
    other_key = reply_address("another-secret", mail_org.org_id, DOMAIN, ticket)
    assert other_record != forged
    client = smtp(running.port)
    try:
        client.mail(SENDER)
        for address in (forged, other_org, other_key):
            assert rcpt(client, address)[0] == 550, address
        assert rcpt(client, valid.upper())[0] == 250
        assert client.data(message(to=valid).as_bytes())[0] == 250
    finally:
        client.quit()
    (row,) = inbound_rows(queue_app)
    assert row.recipients == [valid]


def test_one_message_for_two_organizations_is_a_row_for_each(queue_app, gateway, mail_org) -> None:
    running = gateway(queue_app)
    with smtp(running.port) as client:
        refused = client.sendmail(
            SENDER,
            [f"sales@{DOMAIN}", f"info@{OTHER_DOMAIN}", f"support@{DOMAIN}", f"sales@{DOMAIN}"],
            message().as_bytes(),
        )
    assert refused == {}
    rows = inbound_rows(queue_app)
    assert {row.organization_id: row.recipients for row in rows} == {
        mail_org.org_id: [f"sales@{DOMAIN}", f"support@{DOMAIN}"],
        mail_org.other_org_id: [f"info@{OTHER_DOMAIN}"],
    }
    assert rows[0].raw == rows[1].raw
    assert get_jobs(queue_app).pending() == 2


def test_a_bounce_has_the_null_sender(queue_app, gateway, mail_org) -> None:
    running = gateway(queue_app)
    with smtp(running.port) as client:
        client.sendmail("<>", [f"sales@{DOMAIN}"], message(subject="Undeliverable").as_bytes())
    (row,) = inbound_rows(queue_app)
    assert row.envelope_from == ""


def test_a_message_over_the_size_limit_is_refused(queue_app, gateway, mail_org) -> None:
    running = gateway(queue_app, CONNECTOR_MAIL_MAX_MESSAGE_BYTES="4000")
    big = message(body=("y" * 70 + "\n") * 100).as_bytes()
    assert len(big) > 4000
    client = smtp(running.port)
    try:
        assert client.esmtp_features["size"] == "4000"
        # Announced with SIZE (as smtplib's sendmail does): refused at MAIL FROM.
        code, reply = client.mail(SENDER, [f"SIZE={len(big)}"])
        assert code == 552, reply
        # Not announced: refused after the data.
        client.rset()
        client.mail(SENDER)
        client.rcpt(f"sales@{DOMAIN}")
        code, reply = client.data(big)
        assert code == 552, reply
        # The connection goes on: a message within the limit is taken.
        client.mail(SENDER)
        client.rcpt(f"sales@{DOMAIN}")
        assert client.data(message().as_bytes())[0] == 250
    finally:
        client.quit()
    (row,) = inbound_rows(queue_app)
    assert b"Quote for 50 seats" in row.raw


def test_when_the_message_cannot_be_stored_the_sender_is_told_to_try_later(
    own_postgres, gateway, tmp_path
) -> None:
    app = create_app(base_config(DATABASE_URL=own_postgres.url, DB_TIMEOUT_SECONDS=3))
    app.instance_path = str(tmp_path / "instance")
    upgrade_schema(app)
    org = make_mail_orgs(app)
    running = gateway(app)

    # Read-only (as a standby after a failover): recipients are checked, the data not stored.
    own_postgres.set_read_only(True)
    wait_for(lambda: _read_only(app), "the server to be read-only")
    client = smtp(running.port)
    try:
        client.mail(SENDER)
        assert rcpt(client, f"sales@{DOMAIN}")[0] == 250
        code, reply = client.data(message().as_bytes())
        assert (code, reply[:5]) == (451, b"4.3.0"), reply
    finally:
        client.quit()
    own_postgres.set_read_only(False)
    wait_for(lambda: not _read_only(app), "the server to take writes")

    # Stopped: not even the recipient can be checked, and that is a 451 too, never a 550.
    own_postgres.stop()
    client = smtp(running.port)
    try:
        client.mail(SENDER)
        code, reply = rcpt(client, f"sales@{DOMAIN}")
        assert (code, reply[:5]) == (451, b"4.3.0"), reply
    finally:
        client.close()
    own_postgres.start()

    # The sender's retry goes through: the message was never lost, only delayed.
    def sent() -> bool:
        try:
            with smtp(running.port) as client:
                client.sendmail(SENDER, [f"sales@{DOMAIN}"], message().as_bytes())
            return True
        except smtplib.SMTPException:
            return False

    wait_for(sent, "the gateway to store again")
    (row,) = inbound_rows(app)
    assert row.organization_id == org.org_id
    assert "could not store" in running.output().lower()
    app.extensions["connector.engine"].dispose()


def _read_only(app: Flask) -> bool:
    with app.extensions["connector.engine"].connect() as connection:
        return connection.execute(sa.text("SHOW transaction_read_only")).scalar() == "on"


def test_a_queue_that_cannot_be_reached_still_gets_250(queue_app, gateway, mail_org) -> None:
    # The row is committed first: the worker's sweep routes what was stored and not queued.
    running = gateway(queue_app, CONNECTOR_REDIS_URL="redis://127.0.0.1:1/0")
    with smtp(running.port) as client:
        assert client.sendmail(SENDER, [f"sales@{DOMAIN}"], message().as_bytes()) == {}
    (row,) = inbound_rows(queue_app)
    assert row.status == InboundStatus.RECEIVED
    assert "could not queue its routing" in running.output()


def test_the_heartbeat_shows_in_readyz_and_sigterm_stops_it(queue_app, client, gateway) -> None:
    running = gateway(queue_app)

    def gateway_state() -> str:
        return client.get("/readyz").json["mail"]["gateway"]

    wait_for(lambda: gateway_state().startswith("up, seen "), "the gateway's heartbeat")
    assert client.get("/readyz").status_code == 200
    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(timeout=20) == 0
    assert "Mail gateway stopping" in running.output()


def test_a_port_in_use_is_a_clear_error(queue_app) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [str(BIN / "connector"), "mail-gateway", "--port", str(port)],
            env=app_env(queue_app),
            capture_output=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in done.stderr.decode()


# connector mail queue|failed|retry|held ----------------------------------------------------


def _add_mail(app: Flask, org_id: int) -> dict[str, int]:
    """A message of each kind: received (not routed yet), failed, held, done; outgoing mail
    failed and sent."""
    ids = {}
    with session_scope(app) as session:
        for name, status, error in (
            ("received", InboundStatus.RECEIVED, None),
            ("failed", InboundStatus.FAILED, "OperationalError: the database went away\nline 2"),
            ("held", InboundStatus.HELD, None),
            ("done", InboundStatus.DONE, None),
        ):
            row = InboundMessage(
                organization_id=org_id,
                source="smtp",
                envelope_from=f"{name}@customer.test",
                recipients=[f"sales@{DOMAIN}"],
                raw=message(subject=f"Subject of {name}").as_bytes(),
                status=status,
                attempts=4 if error else 0,
                error=error,
                outcome="held" if status == InboundStatus.HELD else None,
            )
            session.add(row)
            session.flush()
            ids[name] = row.id
        for name, status in (("out-failed", OutboundStatus.FAILED), ("sent", OutboundStatus.SENT)):
            out = OutboundMail(
                organization_id=org_id,
                kind="acknowledgment",
                from_address=f"sales@{DOMAIN}",
                to_addresses=["hank@customer.test"],
                subject="[#L-1] We received your message",
                message_id=f"<{name}@{DOMAIN}>",
                raw=b"x",
                status=status,
                attempts=4 if status == OutboundStatus.FAILED else 1,
                error="SMTPRecipientsRefused: 550 no such user"
                if status == OutboundStatus.FAILED
                else None,
            )
            session.add(out)
            session.flush()
            ids[name] = out.id
    return ids


def test_mail_queue_lists_what_waits_with_the_gateway_and_the_worker(
    queue_app, runner, mail_org
) -> None:
    ids = _add_mail(queue_app, mail_org.org_id)
    result = runner.invoke(args=["mail", "queue"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Gateway: not seen. Worker: not seen."
    assert lines[1] == "Inbound: 1 received, 1 held, 1 failed. Outbound: 0 queued, 1 failed."
    assert lines[2].split() == ["ID", "STATUS", "AGE", "FROM", "TO", "SUBJECT", "ERROR"]
    listed = {line.split()[0]: line for line in lines[3:]}
    assert set(listed) == {f"in:{ids['received']}", f"in:{ids['failed']}", f"in:{ids['held']}",
                           f"out:{ids['out-failed']}"}  # fmt: skip
    # Before routing the subject is read from the message itself.
    assert "received@customer.test" in listed[f"in:{ids['received']}"]
    assert "Subject of received" in listed[f"in:{ids['received']}"]
    assert "OperationalError: the database went away" in listed[f"in:{ids['failed']}"]
    assert "line 2" not in result.output
    assert "SMTPRecipientsRefused" in listed[f"out:{ids['out-failed']}"]
    # One organization's only.
    result = runner.invoke(args=["mail", "queue", "--org", "Globex"])
    assert result.output.splitlines()[-1] == "Nothing waits."
    assert runner.invoke(args=["mail", "queue", "--org", "Nope"]).exit_code == 1


def test_mail_failed_shows_the_errors_whole(queue_app, runner, mail_org) -> None:
    ids = _add_mail(queue_app, mail_org.org_id)
    result = runner.invoke(args=["mail", "failed"])
    assert result.exit_code == 0, result.output
    assert f"in:{ids['failed']}" in result.output and f"out:{ids['out-failed']}" in result.output
    assert "  OperationalError: the database went away\n  line 2\n" in result.output
    assert "Subject: Subject of failed" in result.output
    assert f"in:{ids['received']}" not in result.output


def test_mail_retry_queues_failed_messages_again(queue_app, runner, mail_org) -> None:
    ids = _add_mail(queue_app, mail_org.org_id)
    jobs = get_jobs(queue_app)
    usage = runner.invoke(args=["mail", "retry"])
    assert usage.exit_code == 2 and "--all" in usage.output
    # Only failed messages: a received one is not retried.
    refused = runner.invoke(args=["mail", "retry", f"in:{ids['received']}"])
    assert refused.exit_code == 1 and "no failed message" in refused.output
    assert runner.invoke(args=["mail", "retry", "x12"]).exit_code == 1

    result = runner.invoke(args=["mail", "retry", str(ids["failed"])])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"Queued again: in:{ids['failed']}."
    assert jobs.pending() == 1
    with session_scope(queue_app) as session:
        row = session.get(InboundMessage, ids["failed"])
        assert (row.status, row.attempts, row.error) == (InboundStatus.RECEIVED, 0, None)

    result = runner.invoke(args=["mail", "retry", "--all"])
    assert result.output.strip() == f"Queued again: out:{ids['out-failed']}."
    assert jobs.pending() == 2
    with session_scope(queue_app) as session:
        out = session.get(OutboundMail, ids["out-failed"])
        assert (out.status, out.attempts, out.error) == (OutboundStatus.QUEUED, 0, None)
    assert runner.invoke(args=["mail", "retry", "--all"]).output.strip() == "No failed messages."


def test_a_bare_number_that_names_two_failed_messages_must_say_which(
    queue_app, runner, mail_org
) -> None:
    ids = _add_mail(queue_app, mail_org.org_id)
    with session_scope(queue_app) as session:
        # Make in:N and out:N both failed, whatever the ids came out as.
        n = ids["out-failed"]
        session.execute(
            sa.update(InboundMessage)
            .where(InboundMessage.id == n)
            .values(status=InboundStatus.FAILED, error="e")
        )
    result = runner.invoke(args=["mail", "retry", str(n)])
    assert result.exit_code == 1 and "say which" in result.output
    result = runner.invoke(args=["mail", "retry", f"out:{n}"])
    assert result.output.strip() == f"Queued again: out:{n}."


def test_mail_held_lists_and_releases_without_the_cap(queue_app, runner, mail_org) -> None:
    ids = _add_mail(queue_app, mail_org.org_id)
    result = runner.invoke(args=["mail", "held"])
    assert result.exit_code == 0, result.output
    (header, line) = result.output.splitlines()
    assert line.split()[:2] == [f"in:{ids['held']}", "held"]
    assert "held@customer.test" in line and "Subject of held" in line
    # Only held messages are released.
    refused = runner.invoke(args=["mail", "held", "--release", f"in:{ids['failed']}"])
    assert refused.exit_code == 1 and "no held message" in refused.output

    result = runner.invoke(args=["mail", "held", "--release", str(ids["held"])])
    assert result.output.strip() == f"Released: in:{ids['held']}."
    with session_scope(queue_app) as session:
        row = session.get(InboundMessage, ids["held"])
        assert (row.status, row.cap_exempt, row.outcome) == (InboundStatus.RECEIVED, True, None)
        released = session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "inbound.released")
        ).all()
        assert [(e.target, e.actor.startswith("cli:")) for e in released] == [
            (f"inbound:{ids['held']}", True)
        ]
    assert get_jobs(queue_app).pending() == 1
    assert runner.invoke(args=["mail", "held"]).output.strip() == "No held messages."


# The demo organization ------------------------------------------------------------------------


def test_the_demo_org_receives_mail_at_its_domain(queue_app, gateway) -> None:
    with session_scope(queue_app) as session:
        load_demo(session, queue_app.config["SECRET_KEY"], contacts=5, companies=2)
    with session_scope(queue_app) as session:
        # Loaded again (each `./dev start` does): nothing more, nothing changed.
        load_demo(session, queue_app.config["SECRET_KEY"])
        org = session.scalar(sa.select(Organization).where(Organization.name == "Demo Company"))
        assert org.mail_domain == MAIL_DOMAIN == "demo.connector.test"
        aliases = {a.address: (a.creates, a.auto_reply) for a in list_aliases(session, org)}
        assert not session.dirty and not session.new
    assert aliases == {
        f"sales@{MAIL_DOMAIN}": ("lead", True),
        f"support@{MAIL_DOMAIN}": ("ticket", True),
    }
    running = gateway(queue_app)
    with smtp(running.port) as client:
        refused = client.sendmail(
            SENDER, [f"sales@{MAIL_DOMAIN}", f"support@{MAIL_DOMAIN}"], message().as_bytes()
        )
        assert refused == {}
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail(SENDER, [f"info@{MAIL_DOMAIN}"], message().as_bytes())
    (row,) = inbound_rows(queue_app)
    assert row.recipients == [f"sales@{MAIL_DOMAIN}", f"support@{MAIL_DOMAIN}"]
