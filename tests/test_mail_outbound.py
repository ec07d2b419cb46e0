"""Acknowledgments and sending (issue 17, item 4): composed for a record, queued as an
OutboundMail row, sent through real SMTP servers (plain, STARTTLS, SMTPS, with AUTH), DKIM
signatures checked with dkimpy, failures classified, the DNS records printed, the local
sink."""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
import signal
import smtplib
import subprocess
import sys
import time
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import dkim as dkimpy
import pytest
from flask import Flask
from sqlalchemy import select

from connector.activities import service as activities
from connector.activities.mime import parse_raw_message
from connector.db import session_scope
from connector.email_templates.service import create_template
from connector.jobs import get_jobs
from connector.jobs.outbound import RetryLater, requeue_lost, send_outbound
from connector.mail import aliases
from connector.mail.acknowledgments import queue_acknowledgment
from connector.mail.models import InboundMessage, OutboundMail, OutboundStatus
from connector.mail.reply_addresses import record_of_reply_address
from connector.orgs import service as orgs
from connector.orgs.context import Ctx
from connector.orgs.models import Role
from connector.orm import utcnow
from connector.providers.mail import dkim
from connector.providers.mail.smtp import SmtpConfigError, SmtpTarget, parse_smtp_url
from connector.records import service as records
from connector.records.models import RecordType
from connector.records.refs import RecordRef
from connector.store import get_store
from tests.smtp_fixtures import free_port, rsa_key_pem, smtp_server

DOMAIN = "acme-mail.test"
CUSTOMER = "carol@customer.test"
FIRST_MESSAGE_ID = "<first-123@customer.test>"
# The plain test server takes AUTH without TLS on purpose (a relay on the same machine).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def customer_mail(
    subject: str = "Need 40 chairs", sender: str = f"Carol Customer <{CUSTOMER}>"
) -> bytes:
    return (
        f"From: {sender}\r\nTo: sales@{DOMAIN}\r\nSubject: {subject}\r\n"
        f"Message-ID: {FIRST_MESSAGE_ID}\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nHello, we need chairs.\r\n"
    ).encode()


def ctx_for(app: Flask, session: Any, user: Any) -> Ctx:
    return Ctx(session, user, get_store(app), app.extensions["connector.settings"])


def acknowledge(
    app: Flask,
    *,
    raw: bytes | None = None,
    template: tuple[str, str] | None = None,
    creates: str = "lead",
) -> int | None:
    """An organization with its mail domain and an auto-replying alias, a record opened from
    the customer's mail, and its acknowledgment queued and committed: the row's id."""
    raw = raw or customer_mail()
    with session_scope(app) as session:
        org = orgs.get_or_create_org(session, "Acme Mail")
        user = orgs.find_user(session, "owner@acme.test") or orgs.create_user(
            session, org, "owner@acme.test", "Olive Owner", Role.ADMIN
        )
        ctx = ctx_for(app, session, user)
        if org.mail_domain is None:
            aliases.set_mail_domain(session, org, DOMAIN, ctx.settings.free_mail)
        chosen = None
        if template:
            chosen = create_template(ctx, name="Ack", subject=template[0], body_html=template[1])
        alias = aliases.alias_for_address(session, f"sales@{DOMAIN}") or aliases.create_alias(
            session,
            org,
            address=f"sales@{DOMAIN}",
            creates=creates,
            auto_reply=True,
            auto_reply_template=chosen,
        )
        email = parse_raw_message(raw)
        contact = records.contact_for_sender(ctx, email.from_email or "", email.from_name)
        if creates == "ticket":
            record: Any = records.create_ticket(
                ctx, subject=email.subject[:200], contact_id=contact.id if contact else None
            )
            ref = RecordRef(RecordType.TICKET, record.id)
        else:
            record = records.create_lead(
                ctx, title=email.subject[:200], contact_id=contact.id if contact else None
            )
            ref = RecordRef(RecordType.LEAD, record.id)
        activities.log_email(ctx, email, [ref])
        inbound = InboundMessage(
            organization_id=org.id, source="smtp", raw=raw, size=len(raw), recipients=[]
        )
        session.add(inbound)
        session.flush()
        row = queue_acknowledgment(
            ctx,
            alias=alias,
            inbound=inbound,
            email=email,
            record=ref,
            secret_key=app.config["SECRET_KEY"],
        )
        return row.id if row else None


def outbound(app: Flask, outbound_id: int) -> OutboundMail:
    with session_scope(app) as session:
        row = session.get(OutboundMail, outbound_id)
        assert row is not None
        session.expunge(row)
        return row


def dkim_key(tmp_path: Path, app: Flask) -> bytes:
    """A DKIM key configured on the app; the DNS TXT record that publishes it."""
    public = rsa_key_pem(tmp_path / "dkim.pem")
    app.config.update(DKIM_SELECTOR="connector", DKIM_KEY_FILE=str(tmp_path / "dkim.pem"))
    return b"v=DKIM1; k=rsa; p=" + public


def dns_for(record: bytes) -> Any:
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == f"connector._domainkey.{DOMAIN}.".encode() else None

    return lookup


# The SMTP URL ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("smtp://relay.test", SmtpTarget("smtp", "relay.test", 25)),
        ("smtp://relay.test:2525", SmtpTarget("smtp", "relay.test", 2525)),
        (
            "smtp+starttls://ann%40acme.test:p%40ss%3Aw0rd@mail.test",
            SmtpTarget("smtp+starttls", "mail.test", 587, "ann@acme.test", "p@ss:w0rd"),
        ),
        ("SMTPS://u:@mail.test", SmtpTarget("smtps", "mail.test", 465, "u", "")),
        ("smtps://user@mail.test:4650/", SmtpTarget("smtps", "mail.test", 4650, "user", None)),
    ],
)
def test_smtp_urls_name_the_server_port_and_credentials(url: str, target: SmtpTarget) -> None:
    assert parse_smtp_url(url) == target
    assert "w0rd" not in repr(parse_smtp_url(url)) and "w0rd" not in target.describe()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://mail.test", "must start with smtp://, smtp+starttls:// or smtps://"),
        ("mail.test:25", "must start with"),
        ("smtp://", "names no host"),
        ("smtp://mail.test:99999", "not a URL"),
        ("smtp://mail.test/inbox", "nothing after the host"),
        ("smtp://mail.test?verify=false", "nothing after the host"),
        ("smtp://:secret@mail.test", "a password but no user name"),
    ],
)
def test_a_bad_smtp_url_says_what_is_wrong(url: str, says: str) -> None:
    with pytest.raises(SmtpConfigError, match=re.escape(says)):
        parse_smtp_url(url)


# Acknowledging and sending ----------------------------------------------------------------


def test_an_acknowledgment_reaches_the_server_signed_threaded_and_logged(
    app: Flask, tmp_path: Path
) -> None:
    record = dkim_key(tmp_path, app)
    outbound_id = acknowledge(app)
    assert outbound_id is not None
    queued = outbound(app, outbound_id)
    assert queued.status == OutboundStatus.QUEUED and queued.attempts == 0
    with smtp_server(tmp_path, "plain", username="relay", password="s3cret:@x") as server:
        app.config["SMTP_URL"] = server.url()
        send_outbound(app, outbound_id=outbound_id)
        [received] = server.handler.messages
    assert received.login == "relay"
    assert received.rcpt_tos == [CUSTOMER]
    assert received.mail_from == f"sales@{DOMAIN}"  # bounces come back to the alias
    message = message_from_bytes(received.content, policy=policy.default)
    lead_id = queued.record_id
    assert message["Subject"] == f"Re: Need 40 chairs [#L-{lead_id}]"
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["In-Reply-To"] == FIRST_MESSAGE_ID
    assert message["References"] == FIRST_MESSAGE_ID
    assert message["From"] == f"Acme Mail <sales@{DOMAIN}>"
    assert message["To"] == f"Carol Customer <{CUSTOMER}>"
    assert re.fullmatch(rf"<[0-9a-f]{{32}}@{re.escape(DOMAIN)}>", message["Message-ID"])
    assert message["Message-ID"] == queued.message_id
    assert message["Date"] is not None
    reply_to = message["Reply-To"]
    assert reply_to.endswith(f"@{DOMAIN}")
    with session_scope(app) as session:
        org = orgs.find_org(session, "Acme Mail")
        assert org is not None
        assert record_of_reply_address(app.config["SECRET_KEY"], org.id, reply_to) == RecordRef(
            RecordType.LEAD, lead_id
        )
    text = message.get_body(("plain",)).get_content()
    assert f"Your reference is L-{lead_id}" in text and '"Need 40 chairs"' in text
    assert "<p>" in message.get_body(("html",)).get_content()
    assert dkimpy.verify(received.content, dnsfunc=dns_for(record))
    signature = message["DKIM-Signature"]
    assert "d=acme-mail.test" in signature and "s=connector" in signature
    assert "c=relaxed/relaxed" in signature
    assert "auto-submitted" in signature.lower() and "reply-to" in signature.lower()

    sent = outbound(app, outbound_id)
    assert sent.status == OutboundStatus.SENT and sent.attempts == 1 and sent.error is None
    assert sent.sent_at is not None
    # Logged on the lead under its own Message-ID: the customer's reply threads to it.
    with session_scope(app) as session:
        org = orgs.find_org(session, "Acme Mail")
        user = orgs.find_user(session, "owner@acme.test")
        logged = activities.find_logged_email(ctx_for(app, session, user), sent.message_id)
        assert logged is not None
        assert {(link.record_type, link.record_id) for link in logged.links} == {
            (RecordType.LEAD, lead_id)
        }
    # A job that runs again for the same row sends nothing more.
    send_outbound(app, outbound_id=outbound_id)
    assert len(server.handler.messages) == 1


@pytest.mark.parametrize("mode", ["starttls", "smtps"])
def test_tls_servers_are_verified_against_the_configured_authority(
    app: Flask, tmp_path: Path, mode: str
) -> None:
    outbound_id = acknowledge(app, creates="ticket")
    assert outbound_id is not None
    with smtp_server(tmp_path, mode, username="ann@acme.test", password="p@ss w") as server:
        app.config["SMTP_URL"] = server.url()
        # The system's authorities do not know the self-signed certificate: no sending.
        with pytest.raises(RetryLater, match="CERTIFICATE_VERIFY_FAILED"):
            send_outbound(app, outbound_id=outbound_id)
        assert outbound(app, outbound_id).status == OutboundStatus.QUEUED
        app.config["SMTP_CA_FILE"] = str(server.ca_file)
        send_outbound(app, outbound_id=outbound_id)
        [received] = server.handler.messages
    assert received.login == "ann@acme.test"
    subject = message_from_bytes(received.content, policy=policy.default)["Subject"]
    assert re.fullmatch(r"Re: Need 40 chairs \[#T-\d+\]", subject)
    sent = outbound(app, outbound_id)
    assert sent.status == OutboundStatus.SENT and sent.attempts == 2


def test_starttls_that_the_server_does_not_offer_is_not_skipped(app: Flask, tmp_path: Path) -> None:
    outbound_id = acknowledge(app)
    assert outbound_id is not None
    with smtp_server(tmp_path, "starttls", offer_starttls=False) as server:
        app.config["SMTP_URL"] = server.url()
        with pytest.raises(RetryLater, match="does not offer STARTTLS"):
            send_outbound(app, outbound_id=outbound_id)
        assert server.handler.messages == []
    row = outbound(app, outbound_id)
    assert row.status == OutboundStatus.QUEUED and row.attempts == 1
    assert "does not offer STARTTLS" in (row.error or "")


def test_a_wrong_password_is_a_try_that_can_succeed_later(app: Flask, tmp_path: Path) -> None:
    outbound_id = acknowledge(app)
    assert outbound_id is not None
    with smtp_server(tmp_path, "plain", username="relay", password="right") as server:
        app.config["SMTP_URL"] = server.url(password="wrong")
        with pytest.raises(RetryLater, match="535"):
            send_outbound(app, outbound_id=outbound_id)
        app.config["SMTP_URL"] = server.url()
        send_outbound(app, outbound_id=outbound_id)
        assert len(server.handler.messages) == 1
    assert outbound(app, outbound_id).status == OutboundStatus.SENT


def test_the_alias_template_gives_the_body_and_the_subject_keeps_the_number(
    app: Flask, tmp_path: Path
) -> None:
    outbound_id = acknowledge(
        app,
        template=(
            "Thanks {{ contact.first_name }}",
            "<p>Dear {{ contact.first_name }}, we are on <b>{{ lead.title }}</b>.</p>",
        ),
    )
    assert outbound_id is not None
    with smtp_server(tmp_path) as server:
        app.config["SMTP_URL"] = server.url()
        send_outbound(app, outbound_id=outbound_id)
        [received] = server.handler.messages
    message = message_from_bytes(received.content, policy=policy.default)
    html = message.get_body(("html",)).get_content()
    assert "Dear Carol, we are on <b>Need 40 chairs</b>." in html
    assert "Dear Carol, we are on Need 40 chairs." in message.get_body(("plain",)).get_content()
    assert re.fullmatch(r"Re: Need 40 chairs \[#L-\d+\]", message["Subject"])


def test_a_refused_recipient_fails_for_good_without_a_retry(app: Flask, tmp_path: Path) -> None:
    outbound_id = acknowledge(app)
    assert outbound_id is not None
    with smtp_server(tmp_path) as server:
        server.handler.refuse[CUSTOMER] = "550 5.1.1 <carol@customer.test>: no such user"
        app.config["SMTP_URL"] = server.url()
        send_outbound(app, outbound_id=outbound_id)  # no RetryLater: nothing to retry
        send_outbound(app, outbound_id=outbound_id)
    row = outbound(app, outbound_id)
    assert row.status == OutboundStatus.FAILED and row.attempts == 1
    assert "550 5.1.1" in (row.error or "") and "no such user" in (row.error or "")


def test_a_refused_message_fails_for_good(app: Flask, tmp_path: Path) -> None:
    outbound_id = acknowledge(app)
    assert outbound_id is not None
    with smtp_server(tmp_path) as server:
        server.handler.data_answer = "554 5.7.1 Message rejected as spam"
        app.config["SMTP_URL"] = server.url()
        send_outbound(app, outbound_id=outbound_id)
    row = outbound(app, outbound_id)
    assert row.status == OutboundStatus.FAILED and row.error == "554 5.7.1 Message rejected as spam"


def test_temporary_failures_are_retried_then_end_failed(app: Flask, tmp_path: Path) -> None:
    outbound_id = acknowledge(app)
    assert outbound_id is not None
    with smtp_server(tmp_path) as server:
        server.handler.data_answer = "451 4.3.0 Try again later"
        app.config["SMTP_URL"] = server.url()
        for attempt in (1, 2, 3):
            with pytest.raises(RetryLater, match="451 4.3.0"):
                send_outbound(app, outbound_id=outbound_id)
            row = outbound(app, outbound_id)
            assert row.status == OutboundStatus.QUEUED and row.attempts == attempt
        send_outbound(app, outbound_id=outbound_id)  # the last try: failed, not raised
    row = outbound(app, outbound_id)
    assert row.status == OutboundStatus.FAILED and row.attempts == 4
    assert row.error == "after 4 tries: 451 4.3.0 Try again later"


def test_a_server_that_is_down_is_tried_again(app: Flask) -> None:
    outbound_id = acknowledge(app)
    assert outbound_id is not None
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{free_port()}"
    with pytest.raises(RetryLater, match="ConnectionRefusedError"):
        send_outbound(app, outbound_id=outbound_id)
    row = outbound(app, outbound_id)
    assert row.status == OutboundStatus.QUEUED and row.attempts == 1


def test_without_smtp_url_mail_stays_queued(app: Flask, tmp_path: Path) -> None:
    outbound_id = acknowledge(app)
    assert outbound_id is not None
    app.config["SMTP_URL"] = None
    send_outbound(app, outbound_id=outbound_id)
    row = outbound(app, outbound_id)
    assert row.status == OutboundStatus.QUEUED and row.attempts == 0
    assert "CONNECTOR_SMTP_URL is not set" in (row.error or "")
    # An unreadable DKIM key is a configuration problem too: no try is spent on it.
    app.config.update(
        SMTP_URL="smtp://127.0.0.1:25",
        DKIM_SELECTOR="connector",
        DKIM_KEY_FILE=str(tmp_path / "missing.pem"),
    )
    send_outbound(app, outbound_id=outbound_id)
    row = outbound(app, outbound_id)
    assert row.status == OutboundStatus.QUEUED and row.attempts == 0
    assert "CONNECTOR_DKIM_KEY_FILE" in (row.error or "") and "cannot be read" in row.error


def test_a_row_another_job_is_sending_is_left_to_it(app: Flask, tmp_path: Path) -> None:
    outbound_id = acknowledge(app)
    assert outbound_id is not None
    with session_scope(app) as session:
        row = session.get(OutboundMail, outbound_id)
        assert row is not None
        row.claimed_until = utcnow() + dt.timedelta(minutes=3)
    with smtp_server(tmp_path) as server:
        app.config["SMTP_URL"] = server.url()
        send_outbound(app, outbound_id=outbound_id)
        assert server.handler.messages == []
    assert outbound(app, outbound_id).attempts == 0


def test_one_acknowledgment_an_hour_and_none_to_robots_or_ourselves(app: Flask) -> None:
    assert acknowledge(app) is not None
    # The same customer writes again within the hour: no second acknowledgment.
    assert acknowledge(app, raw=customer_mail("Also 10 tables")) is None
    for robot in ("MAILER-DAEMON@mx.customer.test", "owner-list@lists.test", "no-reply@x.test"):
        assert acknowledge(app, raw=customer_mail(sender=robot)) is None
    assert acknowledge(app, raw=customer_mail(sender=f"sales@{DOMAIN}")) is None
    # Another person is acknowledged.
    assert acknowledge(app, raw=customer_mail(sender="dan@other.test")) is not None
    with session_scope(app) as session:
        rows = session.scalars(select(OutboundMail)).all()
        assert sorted(r.to_addresses[0] for r in rows) == [CUSTOMER, "dan@other.test"]


def test_lost_jobs_are_queued_again(queue_app: Flask) -> None:
    app = queue_app
    old, fresh = acknowledge(app), acknowledge(app, raw=customer_mail(sender="dan@other.test"))
    assert old is not None and fresh is not None
    app.config["SMTP_URL"] = None
    assert requeue_lost(app) == []  # nothing can be sent: nothing queued
    app.config["SMTP_URL"] = "smtp://127.0.0.1:25"
    # The worker's first call takes every queued row nobody is sending.
    assert requeue_lost(app) == [old, fresh]
    assert get_jobs(app).pending() == 2
    with session_scope(app) as session:
        row = session.get(OutboundMail, old)
        assert row is not None
        row.created_at = utcnow() - dt.timedelta(minutes=3)
    # Then only those whose own job should have taken them by now.
    assert requeue_lost(app) == [old]


# DNS records --------------------------------------------------------------------------------


def test_mail_dns_prints_spf_dkim_and_dmarc(app: Flask, tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    acknowledge(app)
    result = runner.invoke(args=["mail", "dns", "--org", "Acme Mail"])
    assert result.exit_code == 0, result.output
    assert "openssl genrsa -out dkim.pem 2048" in result.output
    assert "CONNECTOR_DKIM_SELECTOR" in result.output
    assert f'{DOMAIN}. IN TXT "v=spf1 mx ~all"' in result.output

    record = dkim_key(tmp_path, app)
    app.config["SMTP_URL"] = "smtp+starttls://u:p@smtp.relay.test"
    result = runner.invoke(args=["mail", "dns", "--org", "Acme Mail"])
    assert result.exit_code == 0, result.output
    assert f'{DOMAIN}. IN TXT "v=spf1 mx a:smtp.relay.test ~all"' in result.output
    assert f'_dmarc.{DOMAIN}. IN TXT "v=DMARC1; p=quarantine;' in result.output
    [line] = [x for x in result.output.splitlines() if x.startswith("connector._domainkey.")]
    assert line.startswith(f"connector._domainkey.{DOMAIN}. IN TXT ")
    strings = re.findall(r'"([^"]*)"', line)
    assert all(len(s) <= 255 for s in strings) and len(strings) > 1
    assert "".join(strings).encode() == record

    # The record printed checks a signature made with the key.
    signed = dkim.sign(
        customer_mail().replace(b"carol@customer.test>", f"x@{DOMAIN}>".encode()),
        dkim.load_key("connector", str(tmp_path / "dkim.pem")),
    )
    assert dkimpy.verify(signed, dnsfunc=dns_for("".join(strings).encode()))


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ({"SMTP_URL": "smtp//relay"}, "must start with smtp://"),
        ({"DKIM_SELECTOR": "connector"}, "Set both CONNECTOR_DKIM_SELECTOR"),
        ({"DKIM_SELECTOR": "x", "DKIM_KEY_FILE": "/nonexistent.pem"}, "cannot be read"),
    ],
)
def test_mail_dns_reports_a_wrong_configuration(
    app: Flask, config: dict[str, str], says: str
) -> None:
    acknowledge(app)
    app.config.update(config)
    result = app.test_cli_runner().invoke(args=["mail", "dns", "--org", "Acme Mail"])
    assert result.exit_code != 0 and says in result.output


def test_mail_dns_needs_the_mail_domain(app: Flask) -> None:
    with session_scope(app) as session:
        orgs.get_or_create_org(session, "Plain")
    result = app.test_cli_runner().invoke(args=["mail", "dns", "--org", "Plain"])
    assert result.exit_code != 0 and "has no mail domain yet" in result.output
    result = app.test_cli_runner().invoke(args=["mail", "dns", "--org", "Nobody"])
    assert result.exit_code != 0 and "no organization 'Nobody'" in result.output


@pytest.mark.parametrize(
    ("host", "record"),
    [
        ("smtp.relay.test", '"v=spf1 mx a:smtp.relay.test ~all"'),
        ("93.184.215.14", '"v=spf1 mx ip4:93.184.215.14 ~all"'),
        ("2606:2800:21f::25", '"v=spf1 mx ip6:2606:2800:21f::25 ~all"'),
        ("127.0.0.1", '"v=spf1 mx ~all"'),
        (None, '"v=spf1 mx ~all"'),
    ],
)
def test_spf_names_the_smtp_server_as_the_world_sees_it(host: str | None, record: str) -> None:
    lines = dkim.dns_records("acme.test", smtp_host=host, key=None)
    assert f"acme.test. IN TXT {record}" in lines
    if host == "127.0.0.1":
        assert any("the public address it sends from" in line for line in lines)


def test_a_key_that_is_not_a_key_is_said_so(tmp_path: Path) -> None:
    (tmp_path / "bad.pem").write_text("not a key")
    with pytest.raises(dkim.DkimKeyError, match="not an unencrypted PEM private key"):
        dkim.load_key("connector", str(tmp_path / "bad.pem"))
    rsa_key_pem(tmp_path / "ok.pem")
    with pytest.raises(dkim.DkimKeyError, match="not a DNS label"):
        dkim.load_key("bad selector", str(tmp_path / "ok.pem"))


# The local sink --------------------------------------------------------------------------


def test_the_mail_sink_keeps_each_message_as_a_file(tmp_path: Path) -> None:
    port = free_port()
    folder = tmp_path / "sink"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    env["CONNECTOR_INSTANCE_PATH"] = str(tmp_path / "instance")
    command = [str(Path(sys.executable).parent / "connector"), "mail-sink"]
    command += ["--port", str(port), "--folder", str(folder)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client = smtplib.SMTP("127.0.0.1", port, timeout=5)
                break
            except OSError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "the sink did not start"
                time.sleep(0.2)
        with client:
            client.sendmail("sales@acme-mail.test", [CUSTOMER], customer_mail("Chairs"))
            client.sendmail("sales@acme-mail.test", ["dan@other.test"], customer_mail("Tables"))
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(2)]
    finally:
        process.terminate()
        process.wait(timeout=10)
    files = sorted(folder.glob("*.eml"), key=lambda p: int(p.stem.rpartition("-")[2]))
    assert [f.name.rpartition("-")[2] for f in files] == ["1.eml", "2.eml"]
    assert files[0].read_bytes().replace(b"\r\n", b"\n") == customer_mail("Chairs").replace(
        b"\r\n", b"\n"
    )
    assert lines[0].endswith(f": from sales@acme-mail.test to {CUSTOMER}: Chairs")
    assert lines[1].startswith(files[1].name)


def test_the_signature_covers_only_headers_present(tmp_path: Path) -> None:
    rsa_key_pem(tmp_path / "k.pem")
    key = dkim.load_key("connector", str(tmp_path / "k.pem"))
    signed = dkim.sign(customer_mail(), key)
    header = signed.split(b"\r\n\r\n", 1)[0].decode()
    tags = re.search(r"h=([^;]+);", re.sub(r"\s+", "", header))
    assert tags is not None
    assert set(tags.group(1).lower().split(":")) == {
        "from", "to", "subject", "date", "message-id", "content-type"
    }  # fmt: skip
    assert base64.b64decode(key.public_base64)


# In a real worker -----------------------------------------------------------------------------


def test_a_worker_sends_at_its_start_what_no_job_was_queued_for(
    queue_app: Flask, tmp_path: Path
) -> None:
    """The row was committed and its job never queued (the process died in between): the
    worker's first run of its periodic functions finds it and sends it, DKIM-signed."""
    app = queue_app
    record = dkim_key(tmp_path, app)
    outbound_id = acknowledge(app)
    assert outbound_id is not None
    config = app.config
    with smtp_server(tmp_path) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
        env.update(
            CONNECTOR_INSTANCE_PATH=app.instance_path,
            CONNECTOR_DATABASE_URL=config["DATABASE_URL"],
            CONNECTOR_SECRET_KEY=config["SECRET_KEY"],
            CONNECTOR_SMTP_URL=server.url(),
            CONNECTOR_DKIM_SELECTOR=config["DKIM_SELECTOR"],
            CONNECTOR_DKIM_KEY_FILE=config["DKIM_KEY_FILE"],
        )
        if config["REDIS_URL"]:
            env.update(
                CONNECTOR_REDIS_URL=config["REDIS_URL"],
                CONNECTOR_REDIS_PREFIX=config["REDIS_PREFIX"],
            )
        log = Path(app.instance_path) / "worker.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                [str(Path(sys.executable).parent / "connector"), "worker", "--workers", "1"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            # A bound, not a measure: the worker starts, then polls its queue every 2 s.
            deadline = time.monotonic() + 60
            while outbound(app, outbound_id).status == OutboundStatus.QUEUED:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        [received] = server.handler.messages
    assert outbound(app, outbound_id).status == OutboundStatus.SENT
    assert dkimpy.verify(received.content, dnsfunc=dns_for(record))


def test_non_ascii_and_long_subjects_are_composed_signed_and_kept(
    app: Flask, tmp_path: Path
) -> None:
    record = dkim_key(tmp_path, app)
    subject = "Bestellung über 40 Stühle, bitte " + "sehr " * 250
    outbound_id = acknowledge(
        app, raw=customer_mail(subject, sender="Jörg Müller <joerg@kunde.test>")
    )
    assert outbound_id is not None
    with smtp_server(tmp_path) as server:
        app.config["SMTP_URL"] = server.url()
        send_outbound(app, outbound_id=outbound_id)
        [received] = server.handler.messages
    message = message_from_bytes(received.content, policy=policy.default)
    assert message["Subject"].startswith("Re: Bestellung über 40 Stühle, bitte sehr")
    assert message["Subject"].endswith("]")
    assert message["To"] == "Jörg Müller <joerg@kunde.test>"
    assert max(len(line) for line in received.content.split(b"\r\n")) <= 998
    assert dkimpy.verify(received.content, dnsfunc=dns_for(record))
    assert len(outbound(app, outbound_id).subject) == 998
