"""Record numbers in subjects and signed reply addresses: what threads a customer's answer
when their mail client kept no In-Reply-To."""

from __future__ import annotations

import pytest

from connector.mail.numbers import numbers_in_subject, parse_number, record_number, with_tag
from connector.mail.reply_addresses import (
    looks_like_reply_address,
    record_of_reply_address,
    reply_address,
)
from connector.records.models import RecordType
from connector.records.refs import RecordRef

TICKET = RecordRef(RecordType.TICKET, 1234)
LEAD = RecordRef(RecordType.LEAD, 77)
SECRET = "s" * 48


def test_numbers_are_quoted_and_found_again() -> None:
    assert record_number(TICKET) == "T-1234"
    assert record_number(LEAD) == "L-77"
    assert record_number(RecordRef(RecordType.CONTACT, 5)) is None
    subject = with_tag("Printer on fire", TICKET)
    assert subject == "Printer on fire [#T-1234]"
    # Not twice, however often it is tagged (an answer to an answer).
    assert with_tag("Re: " + subject, TICKET) == "Re: " + subject
    assert numbers_in_subject("RE: AW: Printer [#t-1234] and [L-77] [#T-1234]") == [TICKET, LEAD]
    assert parse_number("#T-1234") == TICKET
    assert parse_number("t-1234 ") == TICKET


@pytest.mark.parametrize(
    "subject",
    [
        "Part T-1234 is out of stock",  # a bare number in a sentence is no reference
        "[#X-12] other system",
        "[#T-] nothing",
        "[#T-12a]",
    ],
)
def test_what_is_not_a_number(subject: str) -> None:
    assert numbers_in_subject(subject) == []


def test_a_reply_address_names_its_record_and_cannot_be_guessed() -> None:
    address = reply_address(SECRET, 3, "example.com", TICKET)
    local, _, domain = address.partition("@")
    assert domain == "example.com"
    assert local.startswith("reply+t1234-")
    assert looks_like_reply_address(address)
    assert record_of_reply_address(SECRET, 3, address) == TICKET
    # Mail servers may change the case of a local part.
    assert record_of_reply_address(SECRET, 3, address.upper()) == TICKET
    # The same record number in another organization, another record, another secret.
    assert record_of_reply_address(SECRET, 4, address) is None
    forged = address.replace("t1234-", "t1235-")
    assert record_of_reply_address(SECRET, 3, forged) is None
    assert record_of_reply_address("x" * 48, 3, address) is None
    assert record_of_reply_address(SECRET, 3, "sales@example.com") is None
    lead_address = reply_address(SECRET, 3, "example.com", LEAD)
    assert record_of_reply_address(SECRET, 3, lead_address) == LEAD
