"""Bounce detection and the never-answer rules, on real bounces (tests/data/bounces, from
flufl.bounce's test data) and real ordinary mail (tests/mail_corpus)."""

from __future__ import annotations

from email import message_from_bytes, message_from_string
from email.message import Message
from pathlib import Path

import pytest

from connector.mail.bounces import is_bounce, read_bounce
from connector.mail.loops import is_auto_reply, loop_reason, may_answer, why_not_answer

BOUNCES = Path(__file__).parent / "data" / "bounces"
CORPUS = Path(__file__).parent / "mail_corpus"
NOT_BOUNCES = {"qmail_08.eml", "groupwise_03.eml"}
# The bounces that name no address failed for good: delays, and formats flufl.bounce
# reads no address from.
NO_FAILED_ADDRESS = {
    "dsn_05.eml",
    "simple_28.eml",
    "dumbass_01.eml",
    "bounce_01.eml",
    "simple_43.eml",
}
# Some of the addresses flufl.bounce's own tests expect, per sample.
FAILED = {
    "dsn_01.eml": ["userx@example.com"],
    "qmail_01.eml": ["userx@example.de"],
    "yahoo_01.eml": ["userx@example.com"],
    "postfix_01.eml": ["xxxxx@local.ie"],
    "simple_01.eml": ["bbbsss@example.com"],
    "llnl_01.eml": ["user1@example.gov"],
}


def load(path: Path) -> Message:
    return message_from_bytes(path.read_bytes())


def bounce_samples() -> list[Path]:
    return sorted(p for p in BOUNCES.glob("*.eml") if p.name not in NOT_BOUNCES)


def test_the_samples_are_there_with_their_licence() -> None:
    assert len(bounce_samples()) >= 25
    readme = (BOUNCES / "README.md").read_text()
    assert "flufl.bounce 6.0.0" in readme and "Apache License 2.0" in readme
    assert "Apache License" in (BOUNCES / "LICENSE").read_text()


@pytest.mark.parametrize("path", bounce_samples(), ids=lambda p: p.name)
def test_every_real_bounce_is_one(path: Path) -> None:
    message = load(path)
    assert is_bounce(message)
    bounce = read_bounce(message)
    assert bounce is not None
    assert bounce.reason
    if path.name not in NO_FAILED_ADDRESS:
        assert bounce.failed, "no failed address read"
    for address in FAILED.get(path.name, []):
        assert address in bounce.failed
    # A bounce is never answered.
    assert not may_answer(message, envelope_from="", own_domain="acme.test", bounce=True)


def test_a_delay_is_a_bounce_that_fails_no_address() -> None:
    bounce = read_bounce(load(BOUNCES / "dsn_05.eml"))
    assert bounce is not None
    assert bounce.failed == [] and bounce.delayed


def test_a_delivery_report_gives_its_diagnostic_as_the_reason() -> None:
    bounce = read_bounce(load(BOUNCES / "dsn_10.eml"))
    assert bounce is not None and bounce.failed
    assert bounce.reason != "Undelivered Mail Returned to Sender"


def test_a_persons_reply_is_no_bounce() -> None:
    message = load(BOUNCES / "groupwise_03.eml")
    assert not is_bounce(message)
    assert read_bounce(message) is None


def test_an_auto_reply_is_no_bounce_and_is_not_answered() -> None:
    message = load(BOUNCES / "qmail_08.eml")
    assert not is_bounce(message)
    assert is_auto_reply(message)
    assert not may_answer(
        message, envelope_from="contact@example.com", own_domain=None, bounce=False
    )


OUT_OF_OFFICE = """\
From: Bea Customer <bea@globex.test>
To: support@acme.test
Subject: Out of office: Your request
Auto-Submitted: auto-replied
Message-ID: <ooo-1@globex.test>

I am away until Monday.
"""


def test_out_of_office_is_no_bounce_and_is_not_answered() -> None:
    message = message_from_string(OUT_OF_OFFICE)
    assert not is_bounce(message, "bea@globex.test")
    assert (
        why_not_answer(
            message, envelope_from="bea@globex.test", own_domain="acme.test", bounce=False
        )
        == "Auto-Submitted: auto-replied"
    )


def corpus_messages() -> list[Path]:
    return sorted(
        p
        for p in CORPUS.rglob("*.eml")
        # The corpus has bounces and reports of its own (by name, or multipart/report): those
        # are not "ordinary mail".
        if not any(
            word in p.name
            for word in (
                "bounce",
                "delivery-status",
                "dsn",
                "arf",
                "complaint",
                "report",
                "disposition",
            )
        )
    )


def test_ordinary_mail_is_no_bounce() -> None:
    messages = corpus_messages()
    assert len(messages) > 100
    ordinary = [p for p in messages if load(p).get_content_type() != "multipart/report"]
    taken = [
        str(p.relative_to(CORPUS)) for p in ordinary if is_bounce(load(p), "someone@example.com")
    ]
    assert taken == []


PLAIN = """\
From: Bea Customer <bea@globex.test>
To: sales@acme.test
Subject: Undeliverable ideas for our offices
Message-ID: <plain-1@globex.test>

Hello, we would like a quote.
"""


def test_a_persons_subject_alone_makes_no_bounce() -> None:
    assert not is_bounce(message_from_string(PLAIN), "bea@globex.test")


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Auto-Submitted: auto-generated", "Auto-Submitted: auto-generated"),
        ("Precedence: bulk", "Precedence: bulk"),
        ("Precedence: list", "Precedence: list"),
        ("Precedence: junk", "Precedence: junk"),
        ("X-Autoreply: yes", "X-Autoreply"),
        ("X-Autorespond: yes", "X-Autorespond"),
        ("List-Id: <news.globex.test>", "List-Id (a mailing list)"),
    ],
)
def test_robots_are_never_answered(header: str, reason: str) -> None:
    message = message_from_string(header + "\n" + PLAIN.replace("Undeliverable ideas", "Ideas"))
    assert (
        why_not_answer(
            message, envelope_from="bea@globex.test", own_domain="acme.test", bounce=False
        )
        == reason
    )


def test_who_is_answered() -> None:
    person = message_from_string(PLAIN.replace("Undeliverable ideas", "Ideas"))
    assert may_answer(person, envelope_from="bea@globex.test", own_domain="acme.test", bounce=False)
    said_no = message_from_string("Auto-Submitted: no\n" + PLAIN)
    assert may_answer(
        said_no, envelope_from="bea@globex.test", own_domain="acme.test", bounce=False
    )
    # The null return path, and (polled mail, no envelope) a Return-Path of <>.
    assert why_not_answer(person, envelope_from="", own_domain=None, bounce=False) == (
        "an empty return path"
    )
    null = message_from_string("Return-Path: <>\n" + PLAIN)
    assert not may_answer(null, envelope_from=None, own_domain=None, bounce=False)
    # Our own domain: one alias's acknowledgment must not answer another's.
    own = message_from_string(PLAIN.replace("bea@globex.test", "sales@acme.test"))
    assert why_not_answer(
        own, envelope_from="x@acme.test", own_domain="acme.test", bounce=False
    ) == ("from our own mail domain")


def test_loops() -> None:
    own = ["sales@acme.test", "support@acme.test"]
    person = message_from_string(PLAIN)
    assert loop_reason(person, own_domain="acme.test", own_addresses=own) is None
    ours = message_from_string(PLAIN.replace("bea@globex.test", "Support@acme.test"))
    assert loop_reason(ours, own_domain="acme.test", own_addresses=own)
    marked = message_from_string("X-Loop: sales@acme.test\n" + PLAIN)
    assert loop_reason(marked, own_domain="acme.test", own_addresses=own)
    hops = message_from_string("Received: from a by b\n" * 31 + PLAIN)
    assert loop_reason(hops, own_domain="acme.test", own_addresses=own)
