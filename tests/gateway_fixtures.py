"""`connector mail-gateway` as a real process on the test's database and queue, an
organization with a mail domain and aliases, and an SMTP client's helpers.

Import the fixtures into a test module: `from tests.gateway_fixtures import gateway, mail_org`.
"""

from __future__ import annotations

import os
import re
import signal
import smtplib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from connector.db import session_scope
from connector.mail.aliases import create_alias, set_mail_domain
from connector.mail.models import InboundMessage
from connector.orgs import service as orgs
from connector.orgs.models import Role

BIN = Path(sys.executable).parent
DOMAIN = "acme.test"
OTHER_DOMAIN = "globex.test"
LISTENING = re.compile(rb"Mail gateway on smtp://[^:]+:(\d+)")


def app_env(app: Flask, **overrides: str) -> dict[str, str]:
    """The environment that gives a `connector` process the test app's database, queue and
    secret key (as tests/conftest.py's `worker` fixture does)."""
    config = app.config
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    env.update(
        CONNECTOR_INSTANCE_PATH=app.instance_path,
        CONNECTOR_DATABASE_URL=config["DATABASE_URL"],
        CONNECTOR_SECRET_KEY=config["SECRET_KEY"],
    )
    if config["REDIS_URL"]:
        env.update(
            CONNECTOR_REDIS_URL=config["REDIS_URL"], CONNECTOR_REDIS_PREFIX=config["REDIS_PREFIX"]
        )
    env.update(overrides)
    return env


@dataclass
class Gateway:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def wait_for(condition: Callable[[], object], what: str, seconds: float = 30) -> None:
    """Poll until `condition` holds; a bound, not a measure."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    """`start(app, **overrides)` runs `connector mail-gateway --port 0` (a port the system
    picks, read back from what it prints) on that app's database and queue, CONNECTOR_*
    overrides as keyword arguments. Stopped with SIGTERM afterwards."""
    started: list[Gateway] = []

    def start(app: Flask, **overrides: str) -> Gateway:
        log = tmp_path / f"gateway-{len(started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(BIN / "connector"), "mail-gateway", "--host", "127.0.0.1", "--port", "0"],
                env=app_env(app, **overrides),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        found: list[int] = []

        def listening() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the gateway exited:\n{log.read_text()}")
            match = LISTENING.search(log.read_bytes())
            if match:
                found.append(int(match.group(1)))
            return bool(match)

        wait_for(listening, "the gateway to listen")
        running = Gateway(process, found[0], log)
        started.append(running)
        return running

    yield start
    for running in started:
        if running.process.poll() is None:
            running.process.send_signal(signal.SIGTERM)
            try:
                running.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                running.process.kill()
                running.process.wait(timeout=10)


@dataclass(frozen=True)
class MailOrg:
    org_id: int
    other_org_id: int
    user_email: str


@pytest.fixture
def mail_org(queue_app: Flask) -> MailOrg:
    return make_mail_orgs(queue_app)


def make_mail_orgs(app: Flask) -> MailOrg:
    """Acme at acme.test with sales@ (leads, acknowledged) and support@ (tickets); Globex at
    globex.test with info@ (leads)."""
    free_mail = app.extensions["connector.settings"].free_mail
    with session_scope(app) as session:
        acme = orgs.get_or_create_org(session, "Acme")
        ann = orgs.create_user(session, acme, "ann@acme.test", "Ann", Role.ADMIN)
        set_mail_domain(session, acme, DOMAIN, free_mail)
        create_alias(
            session, acme, address=f"sales@{DOMAIN}", creates="lead", owner=ann, auto_reply=True
        )
        create_alias(session, acme, address=f"support@{DOMAIN}", creates="ticket")
        globex = orgs.get_or_create_org(session, "Globex")
        set_mail_domain(session, globex, OTHER_DOMAIN, free_mail)
        create_alias(session, globex, address=f"info@{OTHER_DOMAIN}", creates="lead")
        return MailOrg(acme.id, globex.id, ann.email)


def message(
    subject: str = "Quote for 50 seats",
    sender: str = "Hank Scorpio <hank@customer.test>",
    to: str = f"sales@{DOMAIN}",
    body: str = "Hello,\nwe would like a quote for 50 seats.\n",
    **headers: str,
) -> EmailMessage:
    mail = EmailMessage(policy=SMTP)  # CRLF line ends, as on the wire
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain="customer.test")
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(body)
    return mail


def smtp(port: int) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", port, timeout=30)
    client.ehlo("client.test")
    return client


def inbound_rows(app: Flask) -> list[InboundMessage]:
    """Every inbound row, oldest first, with its raw bytes loaded."""
    with session_scope(app) as session:
        rows = session.scalars(
            sa.select(InboundMessage)
            .options(sa.orm.undefer(InboundMessage.raw))
            .order_by(InboundMessage.id)
        ).all()
        session.expunge_all()
        return list(rows)
