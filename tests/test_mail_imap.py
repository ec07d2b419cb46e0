"""IMAP polling against a real Dovecot (tests/dovecot.py): each message stored once, by UID,
across polls, a worker killed and started again, concurrent polls, and a folder rebuilt on
the server with a new UIDVALIDITY; a wrong password kept on the mailbox, not a crash.

Routing the stored rows is the routing job's; these tests check the rows."""

from __future__ import annotations

import signal
import socket
import threading
import time
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from connector.db import session_scope
from connector.errors import InvalidInput
from connector.jobs import get_jobs
from connector.jobs.mailboxes import (
    MailboxPollFailed,
    cipher_of,
    due_mailboxes,
    poll,
    poll_mailbox,
)
from connector.mail.aliases import create_alias, set_mail_domain
from connector.mail.mailboxes import Security, parse_imap_url
from connector.mail.models import InboundMessage, InboundStatus, Mailbox
from connector.orgs import service as orgs
from tests.dovecot import Dovecot, dovecot, dovecot_tls  # noqa: F401  (the fixtures)

ALIAS = "sales@acme.test"


def message(subject: str, sender: str = "carol@globex.test") -> tuple[str, bytes]:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = ALIAS
    mail["Subject"] = subject
    message_id = make_msgid(domain="globex.test")
    mail["Message-ID"] = message_id
    mail["Return-Path"] = f"<{sender}>"
    mail.set_content(f"About {subject}.\n")
    return message_id, mail.as_bytes().replace(b"\n", b"\r\n")


def make_alias(app: Flask) -> None:
    with session_scope(app) as session:
        org = orgs.get_or_create_org(session, "Acme")
        set_mail_domain(session, org, "acme.test", app.extensions["connector.settings"].free_mail)
        create_alias(session, org, address=ALIAS, creates="lead")


def add_mailbox(
    app: Flask, runner: Any, tmp_path: Path, url: str, password: str = "s3cret app password"
) -> int:
    password_file = tmp_path / "imap-password"
    password_file.write_text(password + "\n")
    result = runner.invoke(
        args=[
            "mailboxes",
            "add",
            "--org",
            "Acme",
            "--alias",
            ALIAS,
            "--imap-url",
            url,
            "--password-file",
            str(password_file),
        ]
    )
    assert result.exit_code == 0, result.output
    with session_scope(app) as session:
        return session.scalars(select(Mailbox.id).order_by(Mailbox.id.desc())).first() or 0


def stored(app: Flask) -> list[InboundMessage]:
    with session_scope(app) as session:
        rows = list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))
        for row in rows:
            _ = row.raw  # deferred: loaded while the session is open
        session.expunge_all()
        return rows


def mailbox_state(app: Flask, mailbox_id: int) -> Mailbox:
    with session_scope(app) as session:
        mailbox = session.get(Mailbox, mailbox_id)
        assert mailbox is not None
        session.expunge(mailbox)
        return mailbox


@pytest.fixture
def mailbox(queue_app: Flask, runner: Any, tmp_path: Path, dovecot: Dovecot) -> int:  # noqa: F811
    make_alias(queue_app)
    return add_mailbox(queue_app, runner, tmp_path, dovecot.url())


def test_polls_store_each_message_once_and_mark_it_seen(
    queue_app: Flask,
    mailbox: int,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    first = [message(f"Quote {n}") for n in range(3)]
    for _, raw in first:
        dovecot.append(raw)

    result = poll_mailbox(queue_app, mailbox_id=mailbox)
    assert result == {"stored": 3, "passed_over": 0}
    rows = stored(queue_app)
    assert [r.message_id for r in rows] == [m for m, _ in first]
    assert [r.raw for r in rows] == [raw for _, raw in first]
    assert {r.status for r in rows} == {InboundStatus.RECEIVED}
    assert all(r.source == "imap" and r.mailbox_id == mailbox for r in rows)
    assert [r.imap_uid for r in rows] == [1, 2, 3]
    assert rows[0].recipients == [ALIAS]
    assert rows[0].envelope_from == "carol@globex.test"
    assert rows[0].organization_id == mailbox_state(queue_app, mailbox).organization_id
    state = mailbox_state(queue_app, mailbox)
    assert state.last_uid == 3 and state.uidvalidity == rows[0].imap_uidvalidity
    assert state.last_polled_at is not None and state.last_error is None
    # Marked on the server for people reading the mailbox (Dovecot keeps keywords).
    flags = dovecot.flags()
    assert all("\\Seen" in f and "$ConnectorProcessed" in f for f in flags.values()), flags

    # Each stored row is handed to routing, a job of its own.
    assert get_jobs(queue_app).pending() == 3

    assert poll_mailbox(queue_app, mailbox_id=mailbox) == {"stored": 0, "passed_over": 0}
    assert len(stored(queue_app)) == 3
    assert get_jobs(queue_app).pending() == 3

    more = [message(f"Follow-up {n}") for n in range(2)]
    for _, raw in more:
        dovecot.append(raw)
    assert poll_mailbox(queue_app, mailbox_id=mailbox) == {"stored": 2, "passed_over": 0}
    assert [r.message_id for r in stored(queue_app)] == [m for m, _ in first + more]
    assert mailbox_state(queue_app, mailbox).last_uid == 5


def test_many_messages_go_in_batches(
    queue_app: Flask,
    mailbox: int,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    sent = [message(f"Bulk {n}") for n in range(120)]
    for _, raw in sent:
        dovecot.append(raw)
    assert poll_mailbox(queue_app, mailbox_id=mailbox)["stored"] == 120
    assert [r.message_id for r in stored(queue_app)] == [m for m, _ in sent]


def test_a_message_too_large_is_kept_as_failed_and_left_unread(
    queue_app: Flask,
    mailbox: int,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    _, big = message("Scanned contract")
    big = big.replace(b"About Scanned contract.", b"x" * 5000)
    small_id, small = message("Short note")
    dovecot.append(big)
    dovecot.append(small)
    queue_app.config["MAIL_MAX_MESSAGE_BYTES"] = 2000

    assert poll_mailbox(queue_app, mailbox_id=mailbox)["stored"] == 2
    too_large, fine = stored(queue_app)
    assert too_large.status == InboundStatus.FAILED and too_large.raw == b""
    assert too_large.size == len(big) and too_large.imap_uid == 1
    assert "larger than CONNECTOR_MAIL_MAX_MESSAGE_BYTES" in (too_large.error or "")
    assert fine.status == InboundStatus.RECEIVED and fine.message_id == small_id
    # Only the one stored whole goes to routing; the other stays unread on the server.
    assert get_jobs(queue_app).pending() == 1
    flags = dovecot.flags()
    assert "\\Seen" not in flags[1] and "\\Seen" in flags[2]


def test_a_poll_that_dies_before_its_commit_leaves_nothing_half_done(
    queue_app: Flask,
    mailbox: int,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    sent = [message(f"Order {n}") for n in range(3)]
    for _, raw in sent:
        dovecot.append(raw)

    # The process dying as the batch is committed: the database rolls the batch back.
    def die(session: Session, _context: Any, _instances: Any) -> None:
        if any(isinstance(o, InboundMessage) for o in session.new):
            raise SystemExit("killed")

    event.listen(Session, "before_flush", die)
    try:
        with pytest.raises(SystemExit):
            poll(queue_app, mailbox)
    finally:
        event.remove(Session, "before_flush", die)
    assert stored(queue_app) == []
    assert mailbox_state(queue_app, mailbox).last_uid == 0

    poll_mailbox(queue_app, mailbox_id=mailbox)
    assert [r.message_id for r in stored(queue_app)] == [m for m, _ in sent]


def wait_for_rows(
    app: Flask, count: int, seconds: float = 60, every: float = 0.2
) -> list[InboundMessage]:
    deadline = time.monotonic() + seconds
    while True:
        with session_scope(app) as session:
            found = session.scalar(select(func.count()).select_from(InboundMessage)) or 0
        if found >= count or time.monotonic() > deadline:
            return stored(app) if found else []
        time.sleep(every)


def test_messages_are_fetched_once_each_across_a_worker_restart(
    queue_app: Flask,
    mailbox: int,
    dovecot: Dovecot,  # noqa: F811
    worker: Any,
) -> None:
    sent = [message(f"Inquiry {n}") for n in range(300)]
    for _, raw in sent:
        dovecot.append(raw)
    log = Path(queue_app.instance_path) / "worker.log"

    # The worker queues a poll of every mailbox as it starts (and every minute); it is
    # killed as soon as its first batch is stored, most likely in the middle of the poll.
    first = worker()
    assert wait_for_rows(queue_app, 1, every=0.01), log.read_text()
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    at_kill = len(stored(queue_app))

    later = [message(f"Second thought {n}") for n in range(3)]
    for _, raw in later:
        dovecot.append(raw)
    worker()
    wait_for_rows(queue_app, 303)
    # A moment more: anything stored twice would show up now.
    time.sleep(1)
    ids = [r.message_id for r in stored(queue_app)]
    assert sorted(ids) == sorted(m for m, _ in sent + later), (at_kill, log.read_text())
    assert len(set(ids)) == len(ids) == 303
    assert mailbox_state(queue_app, mailbox).last_uid == 303


def test_two_polls_at_once_store_each_message_once(
    queue_app: Flask,
    mailbox: int,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    sent = [message(f"Race {n}") for n in range(60)]
    for _, raw in sent:
        dovecot.append(raw)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            poll(queue_app, mailbox)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    ids = [r.message_id for r in stored(queue_app)]
    assert sorted(ids) == sorted(m for m, _ in sent)
    assert mailbox_state(queue_app, mailbox).last_uid == 60


def test_a_rebuilt_folder_stores_only_what_is_new(
    queue_app: Flask,
    runner: Any,
    tmp_path: Path,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    make_alias(queue_app)
    dovecot.create("Sales")
    mailbox = add_mailbox(queue_app, runner, tmp_path, dovecot.url("Sales"))
    old = [message(f"Old {n}") for n in range(2)]
    for _, raw in old:
        dovecot.append(raw, "Sales")
    poll_mailbox(queue_app, mailbox_id=mailbox)
    before = mailbox_state(queue_app, mailbox).uidvalidity

    # The folder is deleted and made again (a migration, a restore from backup): new
    # UIDVALIDITY, the old messages back under new UIDs, and one that is new.
    dovecot.recreate("Sales")
    new_id, new_raw = message("New one")
    for _, raw in [*old, (new_id, new_raw)]:
        dovecot.append(raw, "Sales")

    result = runner.invoke(args=["mailboxes", "poll", str(mailbox)])
    assert result.exit_code == 0, result.output
    assert "1 new message(s) stored, 2 stored before" in result.output
    state = mailbox_state(queue_app, mailbox)
    assert state.uidvalidity != before and state.last_uid == 3
    rows = stored(queue_app)
    assert [r.message_id for r in rows] == [m for m, _ in old] + [new_id]
    assert rows[-1].imap_uidvalidity == state.uidvalidity and rows[-1].imap_uid == 3

    assert poll_mailbox(queue_app, mailbox_id=mailbox) == {"stored": 0, "passed_over": 0}


def test_a_wrong_password_is_kept_on_the_mailbox(
    queue_app: Flask,
    runner: Any,
    tmp_path: Path,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    make_alias(queue_app)
    mailbox = add_mailbox(queue_app, runner, tmp_path, dovecot.url(), password="not it")
    dovecot.append(message("Lost?")[1])

    with pytest.raises(MailboxPollFailed, match="refused the login of sales@acme.test"):
        poll_mailbox(queue_app, mailbox_id=mailbox)
    state = mailbox_state(queue_app, mailbox)
    assert state.last_error is not None and "refused the login" in state.last_error
    assert state.last_polled_at is not None and state.last_uid == 0
    assert stored(queue_app) == []
    # Not queued again every minute while it fails.
    assert mailbox not in due_mailboxes(queue_app)

    result = runner.invoke(args=["mailboxes", "poll", str(mailbox)])
    assert result.exit_code == 1
    assert "refused the login" in result.output

    listing = runner.invoke(args=["mailboxes", "list"])
    assert listing.exit_code == 0, listing.output
    assert "refused the login of sales@acme.test" in listing.output
    assert dovecot.url() in listing.output


def test_an_unreachable_server_is_kept_on_the_mailbox(
    queue_app: Flask, runner: Any, tmp_path: Path
) -> None:
    make_alias(queue_app)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailbox = add_mailbox(queue_app, runner, tmp_path, f"imap://sales@127.0.0.1:{port}/INBOX")
    with pytest.raises(MailboxPollFailed, match="could not be reached"):
        poll_mailbox(queue_app, mailbox_id=mailbox)
    assert "could not be reached" in (mailbox_state(queue_app, mailbox).last_error or "")


@pytest.mark.parametrize("scheme", ["imaps", "imap+starttls"])
def test_tls_is_verified_against_the_configured_ca(
    queue_app: Flask,
    runner: Any,
    tmp_path: Path,
    dovecot_tls: Dovecot,  # noqa: F811
    scheme: str,
) -> None:
    make_alias(queue_app)
    mailbox = add_mailbox(queue_app, runner, tmp_path, dovecot_tls.url(scheme=scheme))
    sent_id, raw = message("Over TLS")
    dovecot_tls.append(raw)

    # The system's store does not know the test's CA: refused, and said why.
    with pytest.raises(MailboxPollFailed, match="TLS certificate is not trusted"):
        poll_mailbox(queue_app, mailbox_id=mailbox)
    assert stored(queue_app) == []

    queue_app.config["IMAP_CA_FILE"] = str(dovecot_tls.ca_file)
    assert poll_mailbox(queue_app, mailbox_id=mailbox)["stored"] == 1
    assert [r.message_id for r in stored(queue_app)] == [sent_id]
    assert mailbox_state(queue_app, mailbox).last_error is None


def test_starttls_is_required_never_skipped(
    queue_app: Flask,
    runner: Any,
    tmp_path: Path,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    """A server that offers no STARTTLS is an error, not a login in plain text."""
    make_alias(queue_app)
    mailbox = add_mailbox(queue_app, runner, tmp_path, dovecot.url(scheme="imap+starttls"))
    with pytest.raises(MailboxPollFailed, match="STARTTLS"):
        poll_mailbox(queue_app, mailbox_id=mailbox)
    # Nor is implicit TLS to a port that speaks none.
    plain_port = f"imaps://sales%40acme.test@127.0.0.1:{dovecot.port}/INBOX"
    other = add_mailbox(queue_app, runner, tmp_path, plain_port)
    with pytest.raises(MailboxPollFailed, match="does not speak TLS there"):
        poll_mailbox(queue_app, mailbox_id=other)
    assert "Login: user=" not in dovecot.log()


def test_list_and_delete(
    queue_app: Flask,
    mailbox: int,
    runner: Any,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    dovecot.append(message("Hello")[1])
    runner.invoke(args=["mailboxes", "poll"])
    listing = runner.invoke(args=["mailboxes", "list", "--org", "Acme"])
    assert listing.exit_code == 0, listing.output
    line = listing.output.splitlines()[1]
    assert ALIAS in line and dovecot.url() in line and " 1 " in line
    assert "never" not in line

    deleted = runner.invoke(args=["mailboxes", "delete", str(mailbox)])
    assert deleted.exit_code == 0, deleted.output
    assert runner.invoke(args=["mailboxes", "list"]).output.strip() == "No mailboxes."
    # What it brought in stays.
    assert len(stored(queue_app)) == 1
    missing = runner.invoke(args=["mailboxes", "delete", str(mailbox)])
    assert missing.exit_code == 1 and f"no mailbox with id {mailbox}" in missing.output


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://sales@host/INBOX", "the scheme is imaps, imap+starttls or imap"),
        ("imaps://host/INBOX", "it names no user"),
        ("imaps://sales:pw@host/INBOX", "the password goes in --password-file"),
        ("imaps://sales@/INBOX", "it names no host"),
        ("imaps://sales@host:99999/INBOX", "out of range"),
    ],
)
def test_a_bad_url_is_refused_at_add(
    app: Flask, runner: Any, tmp_path: Path, url: str, why: str
) -> None:
    make_alias(app)
    password_file = tmp_path / "pw"
    password_file.write_text("x")
    result = runner.invoke(
        args=[
            "mailboxes",
            "add",
            "--org",
            "Acme",
            "--alias",
            ALIAS,
            "--imap-url",
            url,
            "--password-file",
            str(password_file),
        ]
    )
    assert result.exit_code == 1
    assert "is not an IMAP URL" in result.output and why in result.output


def test_urls() -> None:
    url = parse_imap_url("imaps://sales%40acme.test@imap.gmail.com/Sales%20Leads")
    assert url.security is Security.TLS and url.port == 993
    assert url.user == "sales@acme.test" and url.folder == "Sales Leads"
    assert str(url) == "imaps://sales%40acme.test@imap.gmail.com:993/Sales%20Leads"
    assert parse_imap_url("imap+starttls://u@h").port == 143
    assert parse_imap_url("imap+starttls://u@h").folder == "INBOX"
    assert parse_imap_url("imap://u@h:1143/x").security is Security.PLAIN
    with pytest.raises(InvalidInput):
        parse_imap_url("imap://u@h/?starttls=required")


def test_add_refuses_an_unknown_alias_and_a_folder_polled_already(
    app: Flask, runner: Any, tmp_path: Path
) -> None:
    make_alias(app)
    password_file = tmp_path / "pw"
    password_file.write_text("correct horse battery")
    base = ["mailboxes", "add", "--org", "Acme", "--password-file", str(password_file)]
    url = "imaps://sales@imap.example.test/INBOX"
    unknown = runner.invoke(args=[*base, "--alias", "info@acme.test", "--imap-url", url])
    assert unknown.exit_code == 1 and "not an alias of Acme" in unknown.output
    assert runner.invoke(args=[*base, "--alias", ALIAS, "--imap-url", url]).exit_code == 0
    again = runner.invoke(args=[*base, "--alias", ALIAS, "--imap-url", url])
    assert again.exit_code == 1 and "polled already" in again.output
    with session_scope(app) as session:
        assert session.scalar(select(func.count()).select_from(Mailbox)) == 1
        stored_password = session.scalar(select(Mailbox.password_encrypted))
        # Encrypted at rest; the app's key reads it back.
        assert stored_password is not None and b"horse" not in stored_password
        assert cipher_of(app).decrypt(stored_password) == "correct horse battery"
